# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Static maps in <config_dir>/maps (postfix_records.static_maps): the
    pillar's postfix:maps, postfix:aliases and the relayhost's SASL
    credentials, each written by postfix_map.managed before main.cf names
    it (postmap/postalias only when changed; an untyped map gets Postfix's
    default_database_type when the state runs). Indexed maps Postfix notices
    by itself; pcre, regexp, cidr and texthash maps reload it. Maps dropped
    from pillar are removed. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- set maps = salt['postfix_records.static_maps'](postfix) %}
{%- set directory = salt['postfix_records.maps_dir'](postfix) %}
{%- set type_pkgs = postfix.lookup.map_type_pkgs %}
{%- set pkgs = [] %}
{%- for name, spec in maps.items() if spec.type in type_pkgs and type_pkgs[spec.type] not in pkgs %}
{%-   do pkgs.append(type_pkgs[spec.type]) %}
{%- endfor %}

include:
  - {{ tplroot }}.package
  - {{ tplroot }}.service

{%- if pkgs %}

postfix-maps-type-packages-installed:
  pkg.installed:
    - pkgs: {{ pkgs | json }}
    - require:
      - pkg: postfix-package-installed
{%- endif %}

{%- for name, spec in maps.items() %}

postfix-maps-{{ name }}:
  postfix_map.managed:
    - name: {{ spec.path }}
    - entries: {{ spec.entries | json }}
    - type: {{ spec.type | json }}
    - mode: {{ spec.mode | json }}
    - secret: {{ spec.secret | json }}
    - format: {{ spec.format }}
    - config_dir: {{ postfix.config_dir }}
    - require:
      - pkg: postfix-package-installed
{%-   if pkgs %}
      - pkg: postfix-maps-type-packages-installed
{%-   endif %}
    - require_in:
      - postconf: postfix-config-main-cf
{%-   if not spec.indexed %}
    - watch_in:
      - postfix: postfix-service-running
{%-   endif %}
{%- endfor %}

postfix-maps-pruned:
  postfix_map.pruned:
    - name: {{ directory }}
    - keep: {{ maps.keys() | list | json }}
    - require_in:
      - postconf: postfix-config-main-cf
