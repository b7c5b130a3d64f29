{#- Every raw row that broke the data contract, with the reason, for the run's
    as-of date. Nothing here reaches scoring; nothing is silently dropped. -#}
{%- set validated = [
    ('users', 'int_users_validated', 'user_id'),
    ('bookings', 'int_bookings_validated', 'booking_id'),
    ('searches', 'int_searches_validated', 'search_id'),
    ('proposals', 'int_proposals_validated', 'proposal_id'),
    ('profile_views', 'int_profile_views_validated', 'profile_view_id'),
    ('contacts', 'int_contacts_validated', 'contact_id'),
    ('subscriptions', 'int_subscriptions_validated', 'subscription_id'),
    ('offer_exposures', 'int_offer_exposures_validated', 'offer_exposure_id'),
] -%}

with

{% for source_table, model, id_column in validated %}
{{ source_table }}_rejected as (

    select
        '{{ source_table }}' as source_table,
        rejected.{{ id_column }} as record_id,
        rejected.quarantine_reason,
        rejected.quarantine_detail,
        {{ row_as_json('rejected') }} as record
    from {{ ref(model) }} as rejected
    where not rejected.is_valid

),
{% endfor %}

unioned as (

    {% for source_table, model, id_column in validated %}
    select * from {{ source_table }}_rejected
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select
        {{ dbt.hash(dbt.concat([
            'source_table',
            "cast(record as " ~ dbt.type_string() ~ ")",
            "cast(row_number() over (partition by source_table, cast(record as " ~ dbt.type_string() ~ ") order by record_id) as " ~ dbt.type_string() ~ ")",
        ])) }} as quarantine_id,
        {{ as_of_date_literal() }} as as_of_date,
        source_table,
        record_id,
        quarantine_reason,
        quarantine_detail,
        record
    from unioned

)

select * from final
