{#- The readiness model's weights and tiers. Score and tier logic lives here and
    in int_users_readiness_scored only; the numbers are dbt vars. -#}

{#- Weight of `signal` for `role` from var('readiness_signal_weights'), with a
    clear error when the configuration does not name it or a side's weights
    could exceed a score of 100. -#}
{% macro signal_weight(role, signal) -%}
    {%- set weights = var('readiness_signal_weights') -%}
    {%- if role not in weights or signal not in weights[role] -%}
        {{ exceptions.raise_compiler_error("var('readiness_signal_weights') has no weight for " ~ role ~ "." ~ signal) }}
    {%- endif -%}
    {%- set side_total = weights[role].values() | sum -%}
    {%- if side_total > 100 -%}
        {{ exceptions.raise_compiler_error("var('readiness_signal_weights') for " ~ role ~ " sums to " ~ side_total ~ "; the score is 0-100, so a side's weights must sum to at most 100") }}
    {%- endif -%}
    {{- return(weights[role][signal]) -}}
{%- endmacro %}

{#- The tier for a score and the number of consecutive days the user has been at
    the Ready score or above without converting (null when below it). -#}
{% macro readiness_tier(score, days_at_ready) -%}
    case
        when {{ score }} >= {{ var('tier_overdue_min_score') }}
            or {{ days_at_ready }} >= {{ var('tier_overdue_after_days_at_ready') }}
            then 'Overdue'
        when {{ score }} >= {{ var('tier_ready_min_score') }} then 'Ready'
        when {{ score }} >= {{ var('tier_warming_min_score') }} then 'Warming'
        else 'Cold'
    end
{%- endmacro %}

{#- A stable bucket 0-9999 for a user, from a hash of the configured salt and the
    id: the same user always lands in the same bucket, across runs and dates. -#}
{% macro holdout_bucket(user_id) -%}
    {{ return(adapter.dispatch('holdout_bucket', 'upshift')(user_id)) }}
{%- endmacro %}

{% macro default__holdout_bucket(user_id) -%}
    mod(
        cast(('x' || substr(md5('{{ var("holdout_salt") }}' || '|' || {{ user_id }}), 1, 8)) as bit(32))::bigint
        & 2147483647,
        10000
    )
{%- endmacro %}

{#- Every (role, signal) pair the weights configure. -#}
{% macro readiness_signal_list() -%}
    {%- set pairs = [] -%}
    {%- for role, weights in var('readiness_signal_weights').items() -%}
        {%- for signal in weights -%}{%- do pairs.append((role, signal)) -%}{%- endfor -%}
    {%- endfor -%}
    {{ return(pairs) }}
{%- endmacro %}
