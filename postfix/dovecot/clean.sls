# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Stops Dovecot and removes the configuration postfix.dovecot wrote.
    Mail (mail_root), the vmail user and the packages are kept: they hold or
    own users' mail. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- set dovecot = postfix.dovecot %}

postfix-dovecot-clean-service-dead:
  pidfile_service.dead:
    - name: dovecot
    - pidfile: {{ dovecot.base_dir }}/master.pid

postfix-dovecot-clean-config-absent:
  file.absent:
    - names:
      - {{ dovecot.config_dir }}/dovecot.conf
      - {{ dovecot.config_dir }}/dovecot-sql.conf.ext
      - {{ dovecot.config_dir }}/dovecot-dict-sql.conf.ext
    - require:
      - pidfile_service: postfix-dovecot-clean-service-dead
