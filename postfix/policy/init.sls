# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Policy services from Debian's packages, started by their own commands
    (pidfile_service; restarted when their command line changes): postgrey
    (greylisting) and postsrsd (SRS) as daemons, policyd-spf spawned by
    Postfix (master.cf, from postfix_records). main.cf names them
    (check_policy_service after reject_unauth_destination, SRS canonical
    maps) only once they are in place. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- set policy = postfix.policy %}
{%- set args_dir = postfix.config_dir ~ "/policy" %}

include:
  - {{ tplroot }}.service

{%- if policy.postgrey.enabled or policy.srs.enabled %}

postfix-policy-args-directory:
  file.directory:
    - name: {{ args_dir }}
    - user: root
    - group: root
    - mode: "0755"
{%- endif %}

{%- if policy.postgrey.enabled %}
{%-   set postgrey = policy.postgrey %}
{%-   set postgrey_argv = ["postgrey", "--inet=" ~ postgrey.listen.address ~ ":" ~ postgrey.listen.port,
                           "--delay=" ~ postgrey.delay, "--dbdir=" ~ postgrey.dbdir,
                           "--pidfile=" ~ postgrey.pidfile, "--daemonize",
                           "--user=postgrey", "--group=postgrey"] %}

postfix-policy-postgrey-installed:
  pkg.installed:
    - pkgs: {{ postgrey.packages | json }}

postfix-policy-postgrey-dbdir:
  file.directory:
    - name: {{ postgrey.dbdir }}
    - user: postgrey
    - group: postgrey
    - mode: "0750"
    - makedirs: true
    - require:
      - pkg: postfix-policy-postgrey-installed

postfix-policy-postgrey-args:
  file.managed:
    - name: {{ args_dir }}/postgrey.args
    - contents: {{ (postgrey_argv | join("\n")) | json }}
    - mode: "0644"
    - require:
      - file: postfix-policy-args-directory

postfix-policy-postgrey-running:
  pidfile_service.running:
    - name: postgrey
    - start: {{ postgrey_argv | json }}
    - pidfile: {{ postgrey.pidfile }}
    - executable: perl
    - require:
      - file: postfix-policy-postgrey-dbdir
    - watch:
      - file: postfix-policy-postgrey-args
    - require_in:
      - postconf: postfix-config-main-cf
{%- endif %}

{%- if policy.spf.enabled %}
{%-   set spf = policy.spf %}

postfix-policy-spf-installed:
  pkg.installed:
    - pkgs: {{ spf.packages | json }}

postfix-policy-spf-config:
  file.managed:
    - name: {{ salt['postfix_records.spf_config_file'](postfix) }}
    - contents: |
        # Managed by Salt (postfix formula, postfix.policy)
        debugLevel = 1
        TestOnly = 1
        HELO_reject = {{ spf.helo_reject }}
        Mail_From_reject = {{ spf.mail_from_reject }}
        PermError_reject = False
        TempError_Defer = False
        skip_addresses = {{ spf.skip_addresses }}
    - mode: "0644"
    - require:
      - pkg: postfix-policy-spf-installed
    - require_in:
      - postconf: postfix-config-master-cf
{%- endif %}

{%- if policy.srs.enabled %}
{%-   set srs = policy.srs %}
{%-   set srs_argv = ["postsrsd", "-s" ~ srs.secret_file, "-d" ~ srs.domain, "-l" ~ srs.listen,
                      "-f" ~ srs.forward_port, "-r" ~ srs.reverse_port, "-p" ~ srs.pidfile,
                      "-u", "postsrsd", "-D"] %}
{%-   for domain in srs.exclude_domains %}
{%-     do srs_argv.insert(-3, "-X" ~ domain) %}
{%-   endfor %}

postfix-policy-srs-installed:
  pkg.installed:
    - pkgs: {{ srs.packages | json }}

postfix-policy-srs-args:
  file.managed:
    - name: {{ args_dir }}/postsrsd.args
    - contents: {{ (srs_argv | join("\n")) | json }}
    - mode: "0644"
    - require:
      - file: postfix-policy-args-directory

postfix-policy-srs-running:
  pidfile_service.running:
    - name: postsrsd
    - start: {{ srs_argv | json }}
    - pidfile: {{ srs.pidfile }}
    - require:
      - pkg: postfix-policy-srs-installed
    - watch:
      - file: postfix-policy-srs-args
    - require_in:
      - postconf: postfix-config-main-cf
{%- endif %}
