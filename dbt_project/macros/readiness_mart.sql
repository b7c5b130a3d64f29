{#- Columns of `relation`, minus `except`, qualified with `alias`: the signal
    values carried into a readiness mart without naming each one twice. -#}
{% macro star_except(relation, alias, except) -%}
    {%- if not execute -%}
        {{ return(alias ~ '.*') }}
    {%- endif -%}
    {%- set names = [] -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- if column.name | lower not in except -%}
            {%- do names.append(alias ~ '.' ~ adapter.quote(column.name)) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(names | join(',\n        ')) }}
{%- endmacro %}

{#- A side's readiness mart: one row per user of `role` for the as-of date with
    the score, tier and reasons (readiness_history), the offer and its
    suppression (int_users_offers_assigned), the plan position, and every
    signal's underlying values and boolean from `signals_model`. -#}
{% macro readiness_mart(role, signals_model, id_column) -%}
with

history as (

    select * from {{ ref('readiness_history') }}
    where
        as_of_date = {{ as_of_date_literal() }}
        and role = '{{ role }}'

),

offers as (

    select * from {{ ref('int_users_offers_assigned') }}

),

plans as (

    select * from {{ ref('int_users_plans_resolved') }}

),

signals as (

    select * from {{ ref(signals_model) }}

),

final as (

    select
        history.user_id,
        history.as_of_date,
        history.readiness_score,
        history.readiness_tier,
        history.readiness_reasons,
        history.previous_readiness_tier,
        history.tier_entered_on,
        {{ dbt.datediff('history.tier_entered_on', 'history.as_of_date', 'day') }} as days_in_tier,
        history.days_at_ready,
        offers.offer_code,
        offers.matched_offer_code,
        offers.is_suppressed,
        offers.suppression_reason,
        plans.current_plan_code,
        plans.is_on_trial,
        plans.has_upgraded,
        plans.last_upgraded_plan_code,
        plans.last_upgraded_at,
        {{ star_except(ref(signals_model), 'signals', [id_column, 'as_of_date']) }}
    from history
    inner join signals
        on history.user_id = signals.{{ id_column }}
    left join offers
        on history.user_id = offers.user_id
    left join plans
        on history.user_id = plans.user_id

)

select * from final
{%- endmacro %}
