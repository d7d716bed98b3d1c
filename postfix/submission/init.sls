# -*- coding: utf-8 -*-
# vim: ft=sls
{#- R1: the submission service (port 587, SASL only) in master.cf.
    postfix_records writes its records into postfix.config; this state
    only makes sure they are applied and Postfix picks them up. #}
{%- set tplroot = tpldir.split('/')[0] %}

include:
  - {{ tplroot }}.service
