# -*- coding: utf-8 -*-
# vim: ft=sls
{#- R3 quotas. postfix.config writes the main.cf side of the backend in use
    (postfix_records.quota_backend: `auto` picks vda on a Postfix with the
    VDA patch, else dovecot; `vda` on a Postfix without it fails the render
    with a message naming postfix:quota:backend). Host side: `dovecot` needs
    Dovecot's maildir quota and quota-status service, listening where
    Postfix's check_policy_service asks, and the quota_check lookup table
    that sends only mailboxes near their quota there; `vda` needs its
    virtual_mailbox_limit_maps lookup table. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- from tplroot ~ "/postfixadmin/lookup_tables.jinja" import lookup_tables with context %}
{%- set backend = salt["postfix_records.quota_backend"](postfix) %}

include:
  - {{ tplroot }}.config
  - {{ tplroot }}.postfixadmin.schema
  - {{ tplroot }}.service
{%- if backend == "dovecot" %}
  - {{ tplroot }}.dovecot

{#- the quota check reads the usage Dovecot copies into quota_usage #}
{{ lookup_tables(postfix, 'quota_status', require=[{'postfixadmin': 'postfix-dovecot-quota-usage-table'}]) }}
{%- else %}

{{ lookup_tables(postfix, 'vda') }}
{%- endif %}
