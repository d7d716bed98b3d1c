# -*- coding: utf-8 -*-
# vim: ft=sls
{#- R3 quotas. postfix.config writes the main.cf side of the backend in use
    (postfix_records.quota_backend: `auto` picks vda on a Postfix with the
    VDA patch, else dovecot; `vda` on a Postfix without it fails the render
    with a message naming postfix:quota:backend). Host side: `dovecot` needs
    Dovecot's maildir quota and quota-status service, listening where
    Postfix's check_policy_service asks; `vda` needs nothing more. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- set backend = salt["postfix_records.quota_backend"](postfix) %}
{%- set listen = postfix.dovecot.quota_status_listen %}
{%- set policy_service = "inet:" ~ listen.address ~ ":" ~ listen.port %}
{%- if backend == "dovecot" and postfix.quota.policy_service not in (none, policy_service) %}
{{-   raise("postfix:quota:policy_service (" ~ postfix.quota.policy_service ~ ") must be " ~ policy_service
            ~ ", where postfix:dovecot:quota_status_listen has Dovecot's quota-status listen") }}
{%- endif %}

include:
  - {{ tplroot }}.config
{%- if backend == "dovecot" %}
  - {{ tplroot }}.dovecot
{%- else %}

postfix-quota-vda-patch-present:
  test.succeed_without_changes:
    - comment: Postfix has the VDA quota patch; its virtual_mailbox_limit_maps enforce quota
{%- endif %}
