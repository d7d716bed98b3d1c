# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The host side of R3 lives in Dovecot when the dovecot backend is in use
    (backend dovecot, or auto on a stock Postfix); it is stopped here only
    when it runs for quotas alone (postfix:dovecot not enabled: then
    postfix.dovecot.clean is its own). vda has none. main.cf's quota
    parameters and the vda lookup table go with postfix.clean. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- if postfix.quota.enabled and not postfix.dovecot.enabled
       and salt["postfix_records.quota_backend"](postfix) == "dovecot" %}

include:
  - {{ tplroot }}.dovecot.clean
{%- endif %}
