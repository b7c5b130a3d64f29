{#- Builds a validation model: the staged rows of `staging_model` with their
    staging quarantine reason, or, for rows that passed staging, a reference
    check against valid users of the expected role. `references` is a list of
    {'column': ..., 'role': 'client'|'worker'|none, 'nullable': bool}.
    Rows keep flowing (nothing is dropped here); consumers read `is_valid`. -#}
{% macro validate_references(staging_model, columns, references) -%}
with

staged as (

    select * from {{ ref(staging_model) }}

),

valid_users as (

    select
        user_id,
        role
    from {{ ref('int_users_validated') }}
    where is_valid

),

checked as (

    select
        {%- for column in columns %}
        staged.{{ column }},
        {%- endfor %}
        case
            when staged.quarantine_reason is not null then staged.quarantine_reason
            {%- for reference in references %}
            when {{ reference_failure(reference, loop.index) }} then 'unknown_user'
            {%- endfor %}
        end as quarantine_reason,
        case
            when staged.quarantine_reason is not null then staged.quarantine_detail
            {%- for reference in references %}
            when {{ reference_failure(reference, loop.index) }}
                then '{{ reference.column }} is not a known {{ reference.role or "user" }}'
            {%- endfor %}
        end as quarantine_detail
    from staged
    {%- for reference in references %}
    left join valid_users as referenced_user_{{ loop.index }}
        on staged.{{ reference.column }} = referenced_user_{{ loop.index }}.user_id
        {%- if reference.role %}
        and referenced_user_{{ loop.index }}.role = '{{ reference.role }}'
        {%- endif %}
    {%- endfor %}

),

final as (

    select
        *,
        quarantine_reason is null as is_valid
    from checked

)

select * from final
{%- endmacro %}

{% macro reference_failure(reference, index) -%}
    {%- if reference.get('nullable') -%}
        (staged.{{ reference.column }} is not null and referenced_user_{{ index }}.user_id is null)
    {%- else -%}
        referenced_user_{{ index }}.user_id is null
    {%- endif -%}
{%- endmacro %}
