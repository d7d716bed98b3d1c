# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The host side of R3 lives in Dovecot (backends dovecot and auto on a
    stock Postfix); vda has none. main.cf's quota parameters go with
    postfix.config's clean. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- if postfix.quota.backend != "vda" %}

include:
  - {{ tplroot }}.dovecot.clean
{%- endif %}
