# -*- coding: utf-8 -*-
# vim: ft=sls
{#- R2 backup MX: relay_domains and relay_recipient_maps as (proxied) pgsql
    lookup tables on the local postfixadmin database, so only domains with
    backupmx and known recipients are relayed. With relay:sync_from, the
    local database knows the primary's users: relay:replication `logical`
    subscribes to the primary's publication (PostgreSQL logical
    replication: continuous; the primary publishes with postfix.database and
    database_server:publish), `snapshot` copies them at every apply
    (sync_backup) and reloads Postfix after a change (smtpd and
    trivial-rewrite keep an address's class until then). Either fails,
    saying so and copying nothing, while the primary is not set up yet. The
    main.cf records (incl. smtpd_relay_restrictions) come from
    postfix_records through postfix.config. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- from tplroot ~ "/postfixadmin/lookup_tables.jinja" import lookup_tables with context %}
{%- set relay = postfix.relay %}
{%- if relay.replication not in ['logical', 'snapshot'] %}
{{-   raise("postfix:relay:replication must be logical or snapshot: " ~ relay.replication) }}
{%- endif %}

include:
  - {{ tplroot }}.postfixadmin.schema
  - {{ tplroot }}.service

{%- if relay.sync_from %}
{%-   if relay.replication == 'logical' %}
{%-     set subscription = relay.subscription or ('relay_' ~ grains['id'] | lower | regex_replace('[^a-z0-9_]', '_'))[:63] %}
{%-     set superuser = salt['postfix_records.merge'](postfix.database_server.superuser, {'dbname': postfix.database.dbname}) %}

postfix-relay-database-subscribed:
  postfixadmin.subscription_present:
    - name: {{ subscription }}
    - source: {{ relay.sync_from | json }}
    - publication: {{ relay.publication | json }}
    - database: {{ superuser | json }}
    - require:
      - sls: {{ tplroot }}.postfixadmin.schema
{%-   else %}

postfix-relay-database-synced:
  postfixadmin.backup_synced:
    - name: {{ relay.sync_from.host }}/{{ relay.sync_from.dbname }}
    - source: {{ relay.sync_from | json }}
    - target: {{ postfix.database | json }}
    - require:
      - sls: {{ tplroot }}.postfixadmin.schema
    - watch_in:
      - postfix: postfix-service-running
{%-   endif %}
{%- endif %}

{{ lookup_tables(postfix, 'relay') }}
