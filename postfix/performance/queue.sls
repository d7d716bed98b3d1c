# -*- coding: utf-8 -*-
# vim: ft=sls
{#- R11: the queue on its own fast filesystem, mounted noatime. Mounts
    postfix:performance:queue:device on the queue directory (when given),
    then moves Postfix's queue there if queue_directory differs (Postfix is
    stopped, the queue copied and checked, permissions fixed, Postfix
    started). queue_directory is set here only, never by postfix.config. #}
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import postfix with context %}
{%- set queue = postfix.performance.queue %}

{%- if queue.directory %}
{%-   if queue.device %}

postfix-performance-queue-mounted:
  mount.mounted:
    - name: {{ queue.directory }}
    - device: {{ queue.device }}
    - fstype: {{ queue.fstype }}
    - opts: {{ queue.mount_options | json }}
    - persist: {{ queue.persist }}
    - mkmnt: True
{%-     if salt["file.file_exists"](queue.device) %}
    {#- an image file: /proc/mounts names the loop device it is mounted through #}
    - device_name_regex:
      - ^/dev/loop[0-9]+$
{%-     endif %}
    - require_in:
      - postfix_queue: postfix-performance-queue-moved
{%-   endif %}

postfix-performance-queue-moved:
  postfix_queue.moved:
    - name: {{ queue.directory }}
    - config_dir: {{ postfix.config_dir }}
{%- endif %}
