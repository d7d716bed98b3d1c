# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Virtual domains from the postfixadmin database: the schema, the domains,
    mailboxes and aliases pillar lists, and the virtual_* lookup tables that
    main.cf names (postfix_records). An entry with `ensure: absent` is
    deleted (postfixadmin.*_absent). New mailbox passwords are hashed in the
    format of postfixadmin's $CONF['encrypt'] named by postfixadmin:encrypt.
    Passwords never appear in the output. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- from tplroot ~ "/postfixadmin/lookup_tables.jinja" import lookup_tables with context %}
{%- set postfixadmin = postfix.postfixadmin %}

include:
  - {{ tplroot }}.postfixadmin.schema
  - {{ tplroot }}.service

{%- for kind, key in [('domain', 'domains'), ('mailbox', 'mailboxes'), ('alias', 'aliases')] %}
{%-   for name, entry in postfixadmin[key].items() %}
{%-     set fields = salt['postfix_records.merge'](entry or {}, {}) %}
{%-     set ensure = fields.pop('ensure', 'present') %}
{%-     set domain = name.split('@')[-1] %}
{#-     The entry's key is the state's name; a mailbox's full name is full_name. #}
{%-     if 'name' in fields %}
{{-       raise("postfix:postfixadmin:" ~ key ~ ":" ~ name ~ ":name is not a field (the key is the name; "
                ~ "a mailbox owner's name is full_name)") }}
{%-     endif %}
{%-     if ensure not in ['present', 'absent'] %}
{{-       raise("postfix:postfixadmin:" ~ key ~ ":" ~ name ~ ":ensure must be present or absent: " ~ ensure) }}
{%-     endif %}

postfix-postfixadmin-{{ kind }}-{{ name }}:
  postfixadmin.{{ kind }}_{{ ensure }}:
    - name: {{ name | json }}
    - database: {{ postfix.database | json }}
{%-     if ensure == 'present' %}
{%-       if kind == 'mailbox' %}
    - encrypt: {{ postfixadmin.encrypt | json }}
{%-       endif %}
{%-       for field, value in fields.items() %}
    - {{ field }}: {{ value | json }}
{%-       endfor %}
{%-     endif %}
    - require:
      - sls: {{ tplroot }}.postfixadmin.schema
{%-     if kind != 'domain' and domain in postfixadmin.domains %}
      - postfixadmin: postfix-postfixadmin-domain-{{ domain }}
{%-     endif %}
{%-   endfor %}
{%- endfor %}

{{ lookup_tables(postfix, 'postfixadmin') }}
