# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The Postfix packages (with the pgsql map type), a stock main.cf for an
    instance that has none (Debian's "No configuration" install), and a
    check that the installed Postfix is what the other states assume (the
    VDA patch when quota:backend is vda, the queue directory Dovecot's
    sockets go in). Every state that writes requires this sls, so a
    mismatch fails the run before anything changes. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- set vda = salt['postfix_records.vda_check'](postfix) %}
{#- A queue move (performance:queue:directory) sets queue_directory itself. #}
{%- set expected_values = {} if postfix.performance.queue.directory
                          else {'queue_directory': postfix.lookup.queue_directory} %}

postfix-package-installed:
  pkg.installed:
    - pkgs: {{ postfix.lookup.pkgs | json }}

{%- if postfix.lookup.main_cf_source %}

postfix-package-main-cf-present:
  postconf.stock_main_cf:
    - name: {{ postfix.config_dir }}/main.cf
    - source: {{ postfix.lookup.main_cf_source }}
    - require:
      - pkg: postfix-package-installed
    - require_in:
      - postconf: postfix-package-as-expected
{%- endif %}

postfix-package-as-expected:
  postconf.expected:
    - values: {{ expected_values | json }}
    - reason: pillar postfix:lookup:queue_directory must be where the installed Postfix keeps its queue (Dovecot's sockets go there), or postfix:performance:queue:directory must move it
    - config_dir: {{ postfix.config_dir }}
    - require:
      - pkg: postfix-package-installed
{%- if vda %}

postfix-package-vda-patch-present:
  postconf.expected:
    - known: {{ vda.known | json }}
    - reason: {{ vda.reason | json }}
    - config_dir: {{ postfix.config_dir }}
    - require:
      - postconf: postfix-package-as-expected
{%- endif %}
