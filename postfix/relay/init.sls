# -*- coding: utf-8 -*-
# vim: ft=sls
{#- R2 backup MX: relay_domains and relay_recipient_maps as (proxied) pgsql
    lookup tables on the local postfixadmin database, so only domains with
    backupmx and known recipients are relayed; with relay:sync_from, the
    local database is kept in sync with the primary's (backupmx set). The
    main.cf records (incl. smtpd_relay_restrictions) come from
    postfix_records through postfix.config. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- from tplroot ~ "/postfixadmin/lookup_tables.jinja" import lookup_tables with context %}

include:
  - {{ tplroot }}.postfixadmin.schema
  - {{ tplroot }}.service

{%- if postfix.relay.sync_from %}

postfix-relay-database-synced:
  postfixadmin.backup_synced:
    - name: {{ postfix.relay.sync_from.host }}/{{ postfix.relay.sync_from.dbname }}
    - source: {{ postfix.relay.sync_from | json }}
    - target: {{ postfix.database | json }}
    - require:
      - sls: {{ tplroot }}.postfixadmin.schema
{%- endif %}

{{ lookup_tables(postfix, 'relay') }}
