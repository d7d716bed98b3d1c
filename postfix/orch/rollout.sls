# -*- coding: utf-8 -*-
# vim: ft=sls
{#- D3: the ordered rollout of a fleet, run on the master:

      salt-run state.orchestrate postfix.orch.rollout
      salt-run state.orchestrate postfix.orch.rollout pillar='{"postfix_rollout": {"tgt": "mx*"}}'

    Every minion TGT matches (default all) that has postfix:fleet:role in
    its pillar is applied one at a time: database hosts first, then
    primaries, then backups (by minion id within a role). Each gets its
    postfix:fleet:states (default postfix.database for a database host,
    postfix otherwise); a mail host must then serve SMTP (postfix.serving)
    before the next minion starts. A minion that fails stops the rollout:
    the ones after it are not touched. The roles are read from the minions'
    freshly refreshed pillar (postfix_fleet.rollout, after a
    saltutil.sync_all) when this file is rendered. #}
{%- set rollout = salt['pillar.get']('postfix_rollout', {}) %}
{%- set tgt = rollout.get('tgt', '*') %}
{%- set tgt_type = rollout.get('tgt_type', 'glob') %}
{%- set order = ['database', 'primary', 'backup'] %}
{%- set default_states = {'database': ['postfix.database'], 'primary': ['postfix'], 'backup': ['postfix']} %}
{%- set execute = {'tgt': tgt, 'tgt_type': tgt_type} %}
{#- Rendering needs each minion's role: its modules synced and its pillar refreshed first. #}
{%- do salt['saltutil.runner']('salt.execute', kwarg=dict(execute, fun='saltutil.sync_all')) %}
{%- do salt['saltutil.runner']('salt.execute', kwarg=dict(execute, fun='saltutil.refresh_pillar',
                                                            kwarg={'wait': True})) %}
{%- set found = salt['saltutil.runner']('salt.execute', kwarg=dict(execute, fun='postfix_fleet.rollout')) %}
{%- if found is not mapping %}
{{-   raise("postfix.orch.rollout could not ask the minions for their postfix:fleet: " ~ found) }}
{%- endif %}
{%- set members = [] %}
{%- for minion, fleet in found | dictsort %}
{%-   if fleet is mapping and fleet.role %}
{%-     if fleet.role not in order %}
{{-       raise("postfix:fleet:role of " ~ minion ~ " must be one of " ~ order | join(', ') ~ ", not " ~ fleet.role) }}
{%-     endif %}
{%-     do members.append((order.index(fleet.role), minion, fleet)) %}
{%-   endif %}
{%- endfor %}
{%- if not members %}
{{-   raise("no minion matching " ~ tgt ~ " (" ~ tgt_type ~ ") answered with a postfix:fleet:role in its pillar") }}
{%- endif %}

{%- set ns = namespace(previous=None) %}
{%- for _, minion, fleet in members | sort %}

postfix-orch-{{ minion }}-applied:
  salt.state:
    - tgt: {{ minion | json }}
    - sls: {{ (fleet.states or default_states[fleet.role]) | json }}
    - failhard: True
{%-   if ns.previous %}
    - require:
      - salt: {{ ns.previous }}
{%-   endif %}
{%-   set ns.previous = 'postfix-orch-' ~ minion ~ '-applied' %}
{%-   if fleet.role != 'database' %}

postfix-orch-{{ minion }}-serving:
  salt.function:
    - name: postfix.serving
    - tgt: {{ minion | json }}
    - require:
      - salt: {{ ns.previous }}
{%-     set ns.previous = 'postfix-orch-' ~ minion ~ '-serving' %}
{%-   endif %}
{%- endfor %}
