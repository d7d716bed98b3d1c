# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The Postfix packages (with the pgsql map type), and a stock main.cf for
    an instance that has none (Debian's "No configuration" install). #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}

postfix-package-installed:
  pkg.installed:
    - pkgs: {{ postfix.lookup.pkgs | json }}

{%- if postfix.lookup.main_cf_source %}

postfix-package-main-cf-present:
  file.copy:
    - name: {{ postfix.config_dir }}/main.cf
    - source: {{ postfix.lookup.main_cf_source }}
    - force: False
    - require:
      - pkg: postfix-package-installed
{%- endif %}
