{#- Braze: one row per user to keep in Braze, identified by external_id (our
    user_id), with the custom attributes /users/track sets. Segments in Braze
    are built on these attributes (e.g. upshift_readiness_tier = 'Ready'). The
    sync sends only rows whose attributes_hash changed since Braze last
    accepted them, and clears the attributes of users who left this table. -#}
with

attributes as (

    select * from {{ ref('int_sync_user_attributes') }}

),

final as (

    select
        user_id as external_id,
        role,
        readiness_tier,
        attributes,
        attributes_hash as payload_hash
    from attributes

)

select * from final
