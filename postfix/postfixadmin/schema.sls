# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The postfixadmin schema in `database` (SELECT granted to
    postfixadmin:lookup_user) and the directory of the pgsql lookup table
    files (readable by Postfix only). Relay and postfixadmin need both. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- set lookup_user = postfix.postfixadmin.lookup_user %}

include:
  - {{ tplroot }}.package

postfix-postfixadmin-schema:
  postfixadmin.schema:
    - name: {{ postfix.database.dbname }}
    - lookup_user: {{ (lookup_user.name if lookup_user else None) | json }}
    - database: {{ postfix.database | json }}
    - require:
      - sls: {{ tplroot }}.package

postfix-postfixadmin-tables-directory:
  file.directory:
    - name: {{ salt['postfix_records.tables_dir'](postfix) }}
    - user: root
    - group: postfix
    - mode: "0750"
    - makedirs: True
    - require:
      - sls: {{ tplroot }}.package
