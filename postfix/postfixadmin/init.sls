# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Virtual domains from the postfixadmin database: the schema, the domains,
    mailboxes and aliases pillar lists, and the virtual_* lookup tables that
    main.cf names (postfix_records). Passwords never appear in the output. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- from tplroot ~ "/postfixadmin/lookup_tables.jinja" import lookup_tables with context %}
{%- set postfixadmin = postfix.postfixadmin %}

include:
  - {{ tplroot }}.postfixadmin.schema
  - {{ tplroot }}.service

{%- for kind, key in [('domain', 'domains'), ('mailbox', 'mailboxes'), ('alias', 'aliases')] %}
{%-   for name, fields in postfixadmin[key].items() %}
{%-     set domain = name.split('@')[-1] %}
{#-     The entry's key is the state's name; a mailbox's full name is full_name. #}
{%-     if 'name' in (fields or {}) %}
{{-       raise("postfix:postfixadmin:" ~ key ~ ":" ~ name ~ ":name is not a field (the key is the name; "
                ~ "a mailbox owner's name is full_name)") }}
{%-     endif %}

postfix-postfixadmin-{{ kind }}-{{ name }}:
  postfixadmin.{{ kind }}:
    - name: {{ name }}
    - database: {{ postfix.database | json }}
{%-     for field, value in (fields or {}).items() %}
    - {{ field }}: {{ value | json }}
{%-     endfor %}
    - require:
      - sls: {{ tplroot }}.postfixadmin.schema
{%-     if kind != 'domain' and domain in postfixadmin.domains %}
      - postfixadmin: postfix-postfixadmin-domain-{{ domain }}
{%-     endif %}
{%-   endfor %}
{%- endfor %}

{{ lookup_tables(postfix, 'postfixadmin') }}
