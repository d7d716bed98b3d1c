# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Dovecot for Postfix from the postfixadmin database: SASL auth socket for
    submission, LMTP delivery into maildirs, maildir quota and the
    quota-status policy service. Its sockets live in Postfix's queue
    directory, so a queue move (postfix.performance.queue) comes first. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- set queue_directory = salt["postfix_records.queue_directory"](postfix) %}
{%- set dovecot = postfix.dovecot %}
{%- set dovecot_conf = dovecot.config_dir ~ "/dovecot.conf" %}
{%- set sql_config = dovecot.config_dir ~ "/dovecot-sql.conf.ext" %}
{%- set dict_config = dovecot.config_dir ~ "/dovecot-dict-sql.conf.ext" %}
{%- set lookup_user = postfix.postfixadmin.lookup_user %}

include:
  - {{ tplroot }}.package
  - {{ tplroot }}.postfixadmin.schema
{%- if postfix.performance.queue.directory %}
  - {{ tplroot }}.performance.queue
{%- endif %}

postfix-dovecot-package-installed:
  pkg.installed:
    - pkgs: {{ dovecot.packages | json }}
    - require:
      - sls: {{ tplroot }}.package

postfix-dovecot-vmail-group-present:
  group.present:
    - name: {{ dovecot.vmail_group }}
    - gid: {{ dovecot.vmail_gid }}
    - system: True
    - require:
      - sls: {{ tplroot }}.package

postfix-dovecot-vmail-user-present:
  user.present:
    - name: {{ dovecot.vmail_user }}
    - uid: {{ dovecot.vmail_uid }}
    - gid: {{ dovecot.vmail_gid }}
    - createhome: False
    - shell: /usr/sbin/nologin
    - system: True
    - require:
      - group: postfix-dovecot-vmail-group-present

postfix-dovecot-mail-root-directory:
  file.directory:
    - name: {{ dovecot.mail_root }}
    - user: {{ dovecot.vmail_user }}
    - group: {{ dovecot.vmail_group }}
    - mode: "0770"
    - makedirs: True
    - require:
      - user: postfix-dovecot-vmail-user-present

postfix-dovecot-config-directory:
  file.directory:
    - name: {{ dovecot.config_dir }}
    - user: root
    - group: root
    - mode: "0755"
    - makedirs: True
    - require:
      - sls: {{ tplroot }}.package

{#- Postfix makes private/ when it first starts; Dovecot may come first. #}
postfix-dovecot-socket-directories:
  file.directory:
    - names: {{ [queue_directory ~ "/" ~ salt["file.dirname"](dovecot.auth_socket),
                 queue_directory ~ "/" ~ salt["file.dirname"](dovecot.lmtp_socket)] | unique | list | json }}
    - user: postfix
    - group: root
    - mode: "0700"
    - makedirs: True
    - require:
      - sls: {{ tplroot }}.package
{%- if postfix.performance.queue.directory %}
      - sls: {{ tplroot }}.performance.queue
{%- endif %}

postfix-dovecot-sql-file-managed:
  file.managed:
    - name: {{ sql_config }}
    - source: salt://{{ tplroot }}/dovecot/files/dovecot-sql.conf.ext.jinja
    - template: jinja
    - user: root
    - group: dovecot
    - mode: "0640"
    - show_changes: False
    - context:
        database: {{ postfix.database | json }}
        dovecot: {{ dovecot | json }}
        tplroot: {{ tplroot }}
    - require:
      - pkg: postfix-dovecot-package-installed
      - file: postfix-dovecot-config-directory

postfix-dovecot-quota-usage-table:
  postfixadmin.quota_usage_table:
    - name: {{ postfix.database.dbname }}
    - lookup_user: {{ (lookup_user.name if lookup_user else None) | json }}
    - database: {{ postfix.database | json }}
    - require:
      - sls: {{ tplroot }}.postfixadmin.schema

postfix-dovecot-dict-file-managed:
  file.managed:
    - name: {{ dict_config }}
    - source: salt://{{ tplroot }}/dovecot/files/dovecot-dict-sql.conf.ext.jinja
    - template: jinja
    - user: root
    - group: dovecot
    - mode: "0640"
    - show_changes: False
    - context:
        database: {{ postfix.database | json }}
        tplroot: {{ tplroot }}
    - require:
      - pkg: postfix-dovecot-package-installed
      - file: postfix-dovecot-config-directory

postfix-dovecot-config-file-managed:
  file.managed:
    - name: {{ dovecot_conf }}
    - source: salt://{{ tplroot }}/dovecot/files/dovecot.conf.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: "0644"
    - check_cmd: doveconf -x -n -c
    - context:
        dovecot: {{ dovecot | json }}
        queue_directory: {{ queue_directory | json }}
        sql_config: {{ sql_config | json }}
        dict_config: {{ dict_config | json }}
        quota_message: {{ postfix.quota.message | json }}
    - require:
      - pkg: postfix-dovecot-package-installed
      - file: postfix-dovecot-sql-file-managed
      - file: postfix-dovecot-dict-file-managed
      - postfixadmin: postfix-dovecot-quota-usage-table
      - file: postfix-dovecot-mail-root-directory
      - file: postfix-dovecot-socket-directories

postfix-dovecot-service-running:
  pidfile_service.running:
    - name: dovecot
    - start: [dovecot, -c, {{ dovecot_conf }}]
    - reload: [doveadm, -c, {{ dovecot_conf }}, reload]
    - pidfile: {{ dovecot.base_dir }}/master.pid
    - config_files: {{ [dovecot_conf, sql_config, dict_config] | json }}
    - connect: {{ [[dovecot.imap_listen.address, dovecot.imap_listen.port],
                  [dovecot.quota_status_listen.address, dovecot.quota_status_listen.port]] | json }}
    - watch:
      - file: postfix-dovecot-config-file-managed
      - file: postfix-dovecot-sql-file-managed
      - file: postfix-dovecot-dict-file-managed
