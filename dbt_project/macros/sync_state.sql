{#- The sync engine's event ledger (upshift.sync writes it after a destination
    accepts an event). dbt only reads it, to mark touchpoints sent; before the
    first sync it does not exist and every touchpoint counts as unsent. -#}
{% macro sync_schema() -%}
    {{ return(var('sync_schema', env_var('UPSHIFT_SYNC_SCHEMA', 'upshift_sync'))) }}
{%- endmacro %}

{#- Select of (event_id, destination, sent_at) for events a destination accepted;
    an empty select when the ledger does not exist yet. -#}
{% macro sent_events() -%}
    {%- set ledger = none -%}
    {%- if execute -%}
        {%- set ledger = adapter.get_relation(database=target.database, schema=sync_schema(), identifier='event_ledger') -%}
    {%- endif -%}
    {%- if ledger is not none %}
    select
        event_id,
        destination,
        sent_at
    from {{ ledger }}
    where status = 'sent'
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as event_id,
        cast(null as {{ dbt.type_string() }}) as destination,
        cast(null as timestamp with time zone) as sent_at
    where false
    {%- endif %}
{%- endmacro %}
