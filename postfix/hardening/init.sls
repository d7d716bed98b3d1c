# -*- coding: utf-8 -*-
# vim: ft=sls
{#- R4-R7: HELO restrictions, VRFY off, the banner, the message size limit.
    postfix_records writes its records into postfix.config; this state
    only makes sure they are applied and Postfix picks them up. #}
{%- set tplroot = tpldir.split('/')[0] %}

include:
  - {{ tplroot }}.service
