# -*- coding: utf-8 -*-
# vim: ft=sls
{#- R12/D3: this minion's record in the Salt mine (role, MX priority,
    address, names, domains) once its Postfix serves: the orchestration
    (postfix.orch.rollout) and the fleet's DNS records read it. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- set fleet = postfix.fleet %}
{%- set address = fleet.address or (grains.get('ipv4', []) | reject('match', '^127\\.') | first) %}
{%- set domains = fleet.domains if fleet.domains is not none else
      (postfix.postfixadmin.domains.keys() | list if fleet.role == 'primary' else []) %}

include:
  - {{ tplroot }}.service

postfix-fleet-member-published:
  postfix_fleet.published:
    - name: postfix_fleet          # the mine function name postfix_fleet.members reads
    - role: {{ fleet.role | json }}
    - address: {{ address | json }}
    - hostname: {{ (fleet.hostname or grains['fqdn']) | json }}
    - mx_priority: {{ fleet.mx_priority | json }}
    - mx_name: {{ fleet.mx_name | json }}
    - domains: {{ domains | json }}
    - require:
      - postfix: postfix-service-running
