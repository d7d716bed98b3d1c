# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The minion that runs the postfixadmin database's PostgreSQL server
    (database_server in pillar): the package, pg_hba.conf/pg_ident.conf
    lines for the fleet (and for root to log in as postgres over the
    socket: Salt's superuser connection), server settings through ALTER
    SYSTEM (wal_level logical for a primary that publishes; PostgreSQL is
    restarted while a restart is owed), the roles (the database's owner,
    Postfix's lookup role, the replication role backups subscribe with,
    Dovecot's read-only auth role), the database, the schema, the grants
    and, with database_server:publish, the publication backup MXs subscribe
    to. Salt 3008 has no postgres module: everything goes through the
    postfixadmin module (psycopg) and PostgreSQL's own tools. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- set server = postfix.database_server %}
{%- set superuser = salt['postfix_records.merge'](server.superuser, {'dbname': 'postgres'}) %}
{%- set admin = postfix.database %}
{%- set lookup_user = postfix.postfixadmin.lookup_user %}
{%- set roles = [('admin', {'name': admin.user, 'password': admin.password}, False)] %}
{%- if lookup_user %}
{%-   do roles.append(('lookup', lookup_user, False)) %}
{%- endif %}
{%- if server.replication_role %}
{%-   do roles.append(('replication', server.replication_role, True)) %}
{%- endif %}
{%- if server.dovecot_role %}
{%-   do roles.append(('dovecot', server.dovecot_role, False)) %}
{%- endif %}
{%- set hba_lines = [] %}
{%- for entry in server.hba %}
{%-   set fields = [entry.get('type', 'host'), entry.get('database', admin.dbname), entry.user,
                    entry.get('address', ''), entry.get('method', 'scram-sha-256')] | reject('equalto', '') | list %}
{%-   for field in fields %}
{%-     if field is not string or not field or field | regex_search('[\\s#"\\x00-\\x1f]') %}
{{-       raise("postfix:database_server:hba: bad field " ~ field ~ " in " ~ entry) }}
{%-     endif %}
{%-   endfor %}
{%-   do hba_lines.append(fields | join(' ')) %}
{%- endfor %}
{%- set control_state = 'module' if server.reload_command else 'service' %}

{%- if server.packages %}

postfix-database-packages:
  pkg.installed:
    - pkgs: {{ server.packages | json }}
{%- endif %}

{#- First match wins in pg_hba.conf: the formula's block goes first. #}
postfix-database-hba:
  file.blockreplace:
    - name: {{ server.hba_file }}
    - marker_start: "# BEGIN postfix formula (postfix.database): do not edit"
    - marker_end: "# END postfix formula (postfix.database)"
    - content: |
        local all {{ superuser.user }} peer map=postfix_formula
{%- for line in hba_lines %}
        {{ line }}
{%- endfor %}
    - prepend_if_not_found: True
    - backup: False
{%- if server.packages %}
    - require:
      - pkg: postfix-database-packages
{%- endif %}

postfix-database-ident:
  file.blockreplace:
    - name: {{ server.ident_file }}
    - marker_start: "# BEGIN postfix formula (postfix.database): do not edit"
    - marker_end: "# END postfix formula (postfix.database)"
    - content: |
        postfix_formula root {{ superuser.user }}
        postfix_formula {{ superuser.user }} {{ superuser.user }}
    - append_if_not_found: True
    - backup: False
    - require:
      - file: postfix-database-hba

{%- if server.reload_command %}

postfix-database-reloaded:
  module.run:
    - cmd.run_all:
      - cmd: {{ server.reload_command | json }}
      - python_shell: False
    - onchanges:
      - file: postfix-database-hba
      - file: postfix-database-ident
{%- else %}

postfix-database-reloaded:
  service.running:
    - name: {{ server.service }}
    - enable: True
    - reload: True
    - watch:
      - file: postfix-database-hba
      - file: postfix-database-ident
{%- endif %}

postfix-database-settings:
  postfixadmin.server_settings_present:
    - name: postgresql.auto.conf
    - settings: {{ server.settings | json }}
    - database: {{ superuser | json }}
    - require:
      - {{ control_state }}: postfix-database-reloaded

{#- wal_level and the like take effect only after a restart: the settings
    state reports restart_required (a change) until one happened. #}
postfix-database-restarted:
  module.run:
{%- if server.restart_command %}
    - cmd.run_all:
      - cmd: {{ server.restart_command | json }}
      - python_shell: False
{%- else %}
    - service.restart:
      - name: {{ server.service }}
{%- endif %}
    - onchanges:
      - postfixadmin: postfix-database-settings

{%- for kind, role, replication in roles %}

postfix-database-role-{{ kind }}:
  postfixadmin.role_present:
    - name: {{ role.name }}
    - password: {{ role.password | json }}
    - replication: {{ replication }}
    - database: {{ superuser | json }}
    - require:
      - module: postfix-database-restarted
{%- endfor %}

postfix-database-database:
  postfixadmin.database_present:
    - name: {{ admin.dbname }}
    - owner: {{ admin.user }}
    - database: {{ superuser | json }}
    - require:
      - postfixadmin: postfix-database-role-admin

postfix-database-schema:
  postfixadmin.schema:
    - name: {{ admin.dbname }}
    - lookup_user: {{ (lookup_user.name if lookup_user else None) | json }}
    - database: {{ admin | json }}
    - require:
      - postfixadmin: postfix-database-database
{%- if lookup_user %}
      - postfixadmin: postfix-database-role-lookup
{%- endif %}

{%- for kind, role, replication in roles if kind in ['replication', 'dovecot'] %}

postfix-database-grants-{{ kind }}:
  postfixadmin.role_grants_present:
    - name: {{ role.name }}
    - grants: {{ kind }}
    - database: {{ admin | json }}
    - require:
      - postfixadmin: postfix-database-schema
      - postfixadmin: postfix-database-role-{{ kind }}
{%- endfor %}

{%- if server.publish %}

postfix-database-publication:
  postfixadmin.publication_present:
    - name: {{ server.publication }}
    - database: {{ admin | json }}
    - require:
      - postfixadmin: postfix-database-schema
      - postfixadmin: postfix-database-settings
{%- endif %}
