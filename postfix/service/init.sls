# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Postfix running and serving on its configuration; reloaded (or
    restarted, where a reload cannot take the change) whenever main.cf,
    master.cf or a lookup table file changed, in this run or in one that
    failed or was killed before (R13). With the formula's Dovecot, Dovecot
    runs first: submission's smtpd cannot start without its SASL socket. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}

include:
  - {{ tplroot }}.config
{%- if postfix.dovecot.enabled %}
  - {{ tplroot }}.dovecot
{%- endif %}

postfix-service-running:
  postfix.running:
    - name: {{ postfix.lookup.service }}
    - config_dir: {{ postfix.config_dir }}
    - config_files: {{ salt['postfix_records.served_tables'](postfix) | json }}
    - watch:
      - postconf: postfix-config-main-cf
      - postconf: postfix-config-master-cf
{%- if postfix.dovecot.enabled %}
    - require:
      - pidfile_service: postfix-dovecot-service-running
{%- endif %}
