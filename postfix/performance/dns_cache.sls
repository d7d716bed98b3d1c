# -*- coding: utf-8 -*-
# vim: ft=sls
{#- R10: a local caching resolver (unbound or dnsmasq) that Postfix asks:
    installed, configured from postfix:performance:dns_cache, started by its
    own command (restarted when its configuration changes), then - once it
    answers a query for "localhost" on its listen address - named in
    resolv.conf, also in the copy chrooted Postfix services read. The
    resolv.conf found before is kept beside the configuration for
    dns_cache_clean to put back. It listens on loopback only unless
    allow_remote is set: dnsmasq answers anyone who reaches it. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- set cache = postfix.performance.dns_cache %}
{%- set backends = {
      "unbound": {"start": ["unbound", "-c"], "check": "unbound-checkconf"},
      "dnsmasq": {"start": ["dnsmasq", "-C"], "check": "dnsmasq --test -C"},
    } %}
{%- if cache.backend not in backends %}
{{-   raise("postfix:performance:dns_cache:backend must be unbound or dnsmasq, not " ~ cache.backend) }}
{%- endif %}
{%- if cache.backend == "dnsmasq" and not cache.forwarders %}
{{-   raise("postfix:performance:dns_cache:forwarders must name the upstream servers: dnsmasq does not resolve on its own") }}
{%- endif %}
{%- if not salt["network.is_loopback"](cache.listen) and not cache.allow_remote %}
{{-   raise("postfix:performance:dns_cache:listen " ~ cache.listen ~ " is not a loopback address: other hosts could use the cache as an open resolver (set postfix:performance:dns_cache:allow_remote: true to allow it)") }}
{%- endif %}
{%- set backend = backends[cache.backend] %}
{%- set config_file = cache.config_file or "/etc/postfix-dns-cache/" ~ cache.backend ~ ".conf" %}
{%- set cache_dir = salt["file.dirname"](config_file) %}
{%- set records = postfix.fleet.dns_records %}
{%- set records_file = cache_dir ~ "/fleet-records.conf" if records.enabled else None %}
{%- set resolv_conf_contents = "# Managed by Salt (postfix.performance.dns_cache)\nnameserver " ~ cache.listen ~ "\n" %}

include:
  - {{ tplroot }}.package
{%- if records_file and postfix.fleet.role in ['primary', 'backup'] %}
  - {{ tplroot }}.fleet
{%- endif %}

postfix-performance-dns-cache-package-installed:
  pkg.installed:
    - pkgs: {{ cache.packages[cache.backend] | json }}
    - require:
      - sls: {{ tplroot }}.package

postfix-performance-dns-cache-config-directory:
  file.directory:
    - name: {{ cache_dir }}
    - user: root
    - group: root
    - mode: "0755"
    - makedirs: True
{%- if records_file %}

{#- R12: the MX and A records of the fleet's domains, from the members' mine
    records (read when the state runs); included by the configuration. #}
postfix-performance-dns-cache-fleet-records:
  postfix_fleet.records_managed:
    - name: {{ records_file }}
    - backend: {{ cache.backend }}
    - tgt: {{ records.tgt | json }}
    - tgt_type: {{ records.tgt_type }}
    - domains: {{ records.domains | json }}
    - require:
      - file: postfix-performance-dns-cache-config-directory
{%-   if postfix.fleet.role in ['primary', 'backup'] %}
      - postfix_fleet: postfix-fleet-member-published   {#- this minion's own record is in the zone #}
{%-   endif %}
{%- endif %}

postfix-performance-dns-cache-config-file-managed:
  file.managed:
    - name: {{ config_file }}
    - source: salt://{{ tplroot }}/performance/files/{{ cache.backend }}.conf.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: "0644"
    - check_cmd: {{ backend.check }}
    - context:
        cache: {{ cache | json }}
        cache_dir: {{ cache_dir | json }}
        pidfile: {{ cache.pidfile | json }}
        records_file: {{ records_file | json }}
    - require:
      - pkg: postfix-performance-dns-cache-package-installed
      - file: postfix-performance-dns-cache-config-directory
{%- if records_file %}
      - postfix_fleet: postfix-performance-dns-cache-fleet-records
{%- endif %}

postfix-performance-dns-cache-service-running:
  pidfile_service.running:
    - name: {{ cache.backend }}
    - start: {{ (backend.start + [config_file]) | json }}
    - pidfile: {{ cache.pidfile }}
    - config_files: {{ ([config_file] + ([records_file] if records_file else [])) | json }}
    - probe: {{ ["dig", "@" ~ cache.listen, "-p", "53", "+time=1", "+tries=1", "localhost", "A"] | json }}
    - watch:
      - file: postfix-performance-dns-cache-config-file-managed
{%- if records_file %}
      - postfix_fleet: postfix-performance-dns-cache-fleet-records
{%- endif %}

postfix-performance-dns-cache-resolv-conf-saved:
  file.copy:
    - name: {{ cache_dir }}/resolv.conf.before-dns-cache
    - source: {{ cache.resolv_conf }}
    - force: False
    - preserve: True
    - require:
      - file: postfix-performance-dns-cache-config-file-managed

postfix-performance-dns-cache-resolv-conf-managed:
  file.managed:
    - name: {{ cache.resolv_conf }}
    - contents: {{ resolv_conf_contents | json }}
    - require:
      - file: postfix-performance-dns-cache-resolv-conf-saved
      - pidfile_service: postfix-performance-dns-cache-service-running

{#- Debian runs smtp, smtpd and others chrooted in the queue directory. #}
postfix-performance-dns-cache-chroot-resolv-conf-managed:
  file.managed:
    - name: {{ salt["postfix_records.queue_directory"](postfix) }}/etc/resolv.conf
    - contents: {{ resolv_conf_contents | json }}
    - makedirs: True
    - require:
      - file: postfix-performance-dns-cache-resolv-conf-managed
