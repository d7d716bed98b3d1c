# -*- coding: utf-8 -*-
# vim: ft=sls
{#- All main.cf parameters in one postconf.parameters state, all master.cf
    services in one postconf.services state. postfix_records turns the pillar
    into those records (and refuses bad pillar while this file renders, so
    nothing is applied). Parameters and services the formula set before and
    the pillar no longer has are removed (prune); others are left alone. main.cf names what enabled features provide (lookup
    table files, Dovecot's LMTP, SASL and quota-status sockets), so their
    states come with it whichever sub-state is applied; they add their files
    with require_in. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}

include:
  - {{ tplroot }}.package
{%- for feature in ('postfixadmin', 'relay', 'dovecot', 'quota') if postfix[feature].enabled %}
  - {{ tplroot }}.{{ feature }}
{%- endfor %}
{#- tls and policy have nothing to do without a certificate or a policy service
    (not rendering them saves every run their compile) #}
{%- if salt['postfix_records.tls_files'](postfix) %}
  - {{ tplroot }}.tls
{%- endif %}
  - {{ tplroot }}.maps
{%- if postfix.policy.values() | selectattr('enabled') | list %}
  - {{ tplroot }}.policy
{%- endif %}

postfix-config-main-cf:
  postconf.parameters:
    - name: {{ postfix.config_dir }}/main.cf
    - params: {{ salt['postfix_records.main'](postfix) | json }}
    - config_dir: {{ postfix.config_dir }}
    - extend_proxy_read_maps: True
    - prune: True
    - require:
      - sls: {{ tplroot }}.package

postfix-config-master-cf:
  postconf.services:
    - name: {{ postfix.config_dir }}/master.cf
    - services: {{ salt['postfix_records.master'](postfix) | json }}
    - config_dir: {{ postfix.config_dir }}
    - prune: True
    - require:
      - postconf: postfix-config-main-cf
