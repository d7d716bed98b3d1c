# -*- coding: utf-8 -*-
# vim: ft=sls
{#- R11: the queue on its own fast filesystem, mounted noatime. Checks that
    postfix:performance:queue:directory may hold the queue (not a system
    directory, empty or a Postfix queue without queued mail), mounts
    postfix:performance:queue:device there (when given), then moves
    Postfix's queue there if queue_directory differs (Postfix is stopped,
    the queue copied and checked, permissions fixed, Postfix started, the
    old queue retired; a killed move is finished by the next run: see
    _states/postfix_queue.py). queue_directory is set here only, never by
    postfix.config. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- set queue = postfix.performance.queue %}

{%- if queue.directory %}

include:
  - {{ tplroot }}.package

postfix-performance-queue-target-allowed:
  postfix_queue.target_allowed:
    - name: {{ queue.directory }}
    - config_dir: {{ postfix.config_dir }}
    - require:
      - sls: {{ tplroot }}.package
{%-   if queue.device %}

postfix-performance-queue-mounted:
  mount.mounted:
    - name: {{ queue.directory }}
    - device: {{ queue.device }}
    - fstype: {{ queue.fstype }}
    - opts: {{ queue.mount_options | json }}
    - persist: {{ queue.persist }}
    - mkmnt: True
{%-     if not queue.device.startswith("/dev/") and "=" not in queue.device %}
    {#- an image file: /proc/mounts names the loop device it is mounted through #}
    - device_name_regex:
      - ^/dev/loop[0-9]+$
{%-     endif %}
    - require:
      - postfix_queue: postfix-performance-queue-target-allowed
    - require_in:
      - postfix_queue: postfix-performance-queue-moved
{%-   endif %}

postfix-performance-queue-moved:
  postfix_queue.moved:
    - name: {{ queue.directory }}
    - config_dir: {{ postfix.config_dir }}
    - require:
      - postfix_queue: postfix-performance-queue-target-allowed
{%- endif %}
