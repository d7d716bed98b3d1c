# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Everything: packages, main.cf/master.cf, the running service, the
    always-on hardening and performance settings, and every feature the
    pillar enables (postfix.config brings in the ones main.cf names). #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}

include:
  - {{ tplroot }}.package
  - {{ tplroot }}.config
  - {{ tplroot }}.service
  - {{ tplroot }}.hardening
  - {{ tplroot }}.performance
{%- if postfix.submission.enabled %}
  - {{ tplroot }}.submission
{%- endif %}
{%- if postfix.fleet.role in ['primary', 'backup'] %}
  - {{ tplroot }}.fleet
{%- endif %}
