# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Removes what the formula added: every main.cf parameter it sets, the
    master.cf services it adds, the lookup table files, and (through the
    feature clean states) the DNS cache and, when the pillar enables them,
    Dovecot and the quota pieces (a Dovecot the formula never set up is not
    touched). Postfix keeps running, reloaded without them. The packages
    and the postfixadmin database (mail data) are left alone. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- set added_params = {} %}
{%- for name, value in salt['postfix_records.main'](postfix).items() if value is not none %}
{%-   do added_params.update({name: None}) %}
{%-   if 'proxy:' in value %}
{#-     postfix.config extends proxy_read_maps for proxied maps #}
{%-     do added_params.update({'proxy_read_maps': None}) %}
{%-   endif %}
{%- endfor %}
{%- set added_services = {} %}
{%- for name, record in salt['postfix_records.master'](postfix).items() if record.get('enabled', True) %}
{%-   do added_services.update({name: {'enabled': False}}) %}
{%- endfor %}

include:
{%- if postfix.dovecot.enabled %}
  - {{ tplroot }}.dovecot.clean
{%- endif %}
  - {{ tplroot }}.quota.clean
  - {{ tplroot }}.performance.dns_cache_clean

postfix-clean-main-cf:
  postconf.parameters:
    - name: {{ postfix.config_dir }}/main.cf
    - params: {{ added_params | json }}
    - config_dir: {{ postfix.config_dir }}
    - prune: True

postfix-clean-master-cf:
  postconf.services:
    - name: {{ postfix.config_dir }}/master.cf
    - services: {{ added_services | json }}
    - config_dir: {{ postfix.config_dir }}
    - prune: True

postfix-clean-lookup-tables-absent:
  file.absent:
    - names: {{ salt['postfix_records.all_tables'](postfix).values() | list | json }}
    - require:
      - postconf: postfix-clean-main-cf

postfix-clean-service-running:
  postfix.running:
    - name: {{ postfix.lookup.service }}
    - config_dir: {{ postfix.config_dir }}
    - watch:
      - postconf: postfix-clean-main-cf
      - postconf: postfix-clean-master-cf

{#- The static maps (postfix:maps, aliases, the relayhost's credentials)
    and the certificate files the formula wrote (cert_pem/key_pem or
    self-signed; a certificate the pillar only names is left alone). #}
postfix-clean-static-maps-absent:
  file.absent:
    - name: {{ salt['postfix_records.maps_dir'](postfix) }}
    - require:
      - postconf: postfix-clean-main-cf
{%- set tls_files = salt['postfix_records.tls_files'](postfix) %}
{%- if tls_files.get('written') %}

postfix-clean-tls-files-absent:
  file.absent:
    - names: {{ [tls_files.cert, tls_files.key] | json }}
    - require:
      - postconf: postfix-clean-main-cf
{%- endif %}

{#- The policy daemons the formula started, their command-line files and
    policyd-spf's configuration (the packages stay). #}
{%- if postfix.policy.postgrey.enabled %}

postfix-clean-postgrey-dead:
  pidfile_service.dead:
    - name: postgrey
    - pidfile: {{ postfix.policy.postgrey.pidfile }}
    - executable: perl
    - require:
      - postconf: postfix-clean-main-cf
{%- endif %}
{%- if postfix.policy.srs.enabled %}

postfix-clean-postsrsd-dead:
  pidfile_service.dead:
    - name: postsrsd
    - pidfile: {{ postfix.policy.srs.pidfile }}
    - executable: postsrsd
    - require:
      - postconf: postfix-clean-main-cf
{%- endif %}

postfix-clean-policy-files-absent:
  file.absent:
    - names:
      - {{ postfix.config_dir }}/policy
      - {{ salt['postfix_records.spf_config_file'](postfix) }}
    - require:
      - postconf: postfix-clean-master-cf
