# -*- coding: utf-8 -*-
# vim: ft=sls
{#- R8-R11: biff off and default_process_limit (postfix_records writes both
    into postfix.config), the local caching DNS resolver and the queue on its
    own disk when pillar asks for them. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}

include:
  - {{ tplroot }}.service
{%- if postfix.performance.dns_cache.enabled %}
  - {{ tplroot }}.performance.dns_cache
{%- endif %}
{%- if postfix.performance.queue.directory %}
  - {{ tplroot }}.performance.queue
{%- endif %}
