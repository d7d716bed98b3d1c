# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Postfix running; reloaded (or restarted, where a reload cannot take the
    change) whenever main.cf or master.cf changed (R13). #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}

include:
  - {{ tplroot }}.config

postfix-service-running:
  postfix.running:
    - name: {{ postfix.lookup.service }}
    - config_dir: {{ postfix.config_dir }}
    - watch:
      - postconf: postfix-config-main-cf
      - postconf: postfix-config-master-cf
