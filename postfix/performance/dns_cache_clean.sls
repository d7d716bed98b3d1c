# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Undoes postfix.performance.dns_cache: puts the resolv.conf found before
    back, stops the resolver and removes its configuration. The package stays. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- set cache = postfix.performance.dns_cache %}
{%- set config_file = cache.config_file or "/etc/postfix-dns-cache/" ~ cache.backend ~ ".conf" %}
{%- set saved_resolv_conf = salt["file.dirname"](config_file) ~ "/resolv.conf.before-dns-cache" %}

postfix-performance-dns-cache-clean-resolv-conf-restored:
  file.managed:
    - name: {{ cache.resolv_conf }}
    - source: {{ saved_resolv_conf }}
    - onlyif:
      - fun: file.file_exists
        path: {{ saved_resolv_conf }}

postfix-performance-dns-cache-clean-service-dead:
  pidfile_service.dead:
    - name: {{ cache.backend }}
    - pidfile: {{ cache.pidfile }}
    - require:
      - file: postfix-performance-dns-cache-clean-resolv-conf-restored

postfix-performance-dns-cache-clean-config-absent:
  file.absent:
    - names:
      - {{ config_file }}
      - {{ saved_resolv_conf }}
    - require:
      - pidfile_service: postfix-performance-dns-cache-clean-service-dead
