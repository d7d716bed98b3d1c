# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The server certificate and key main.cf names (postfix_records: tls):
    checked by postfix_tls.certificate before main.cf points at them (a key
    not matching its certificate, an expired certificate: refused naming the
    file), written from tls:cert_pem/key_pem, or, for labs, made self-signed
    by postfix_tls.self_signed (tls:self_signed), which checks the pair
    itself. A new pair reloads Postfix. Nothing here without a certificate. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- set files = salt['postfix_records.tls_files'](postfix) %}
{%- set self_signed = postfix.tls.self_signed %}

{%- if files %}

include:
  - {{ tplroot }}.service

{%-   if self_signed.enabled %}
{%-     set common_name = self_signed.common_name or grains['fqdn'] %}

postfix-tls-self-signed-certificate:
  postfix_tls.self_signed:
    - name: {{ files.cert }}
    - key: {{ files.key }}
    - common_name: {{ common_name | json }}
    - days_valid: {{ self_signed.days_valid }}
    - days_remaining: {{ self_signed.days_remaining }}
    - require_in:
      - postconf: postfix-config-main-cf
    - watch_in:
      - postfix: postfix-service-running

{%-   else %}

postfix-tls-certificate:
  postfix_tls.certificate:
    - name: {{ files.cert }}
    - key: {{ files.key }}
{%-     if postfix.tls.cert_pem %}
    - cert_pem: {{ postfix.tls.cert_pem | json }}
    - key_pem: {{ postfix.tls.key_pem | json }}
{%-     endif %}
    - require_in:
      - postconf: postfix-config-main-cf
    - watch_in:
      - postfix: postfix-service-running
{%-   endif %}
{%- endif %}
