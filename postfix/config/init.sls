# -*- coding: utf-8 -*-
# vim: ft=sls
{#- All main.cf parameters in one postconf.parameters state, all master.cf
    services in one postconf.services state. postfix_records turns the pillar
    into those records (and refuses bad pillar while this file renders, so
    nothing is applied). Feature states add their files with require_in. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}

include:
  - {{ tplroot }}.package

postfix-config-main-cf:
  postconf.parameters:
    - name: {{ postfix.config_dir }}/main.cf
    - params: {{ salt['postfix_records.main'](postfix) | json }}
    - config_dir: {{ postfix.config_dir }}
    - require:
      - sls: {{ tplroot }}.package

postfix-config-master-cf:
  postconf.services:
    - name: {{ postfix.config_dir }}/master.cf
    - services: {{ salt['postfix_records.master'](postfix) | json }}
    - config_dir: {{ postfix.config_dir }}
    - require:
      - postconf: postfix-config-main-cf
