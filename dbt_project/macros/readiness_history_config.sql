{#- The config of a readiness history kept one partition per as-of date
    (int_users_readiness_scored, and readiness_history that publishes it):
    incremental by as_of_date - a run replaces its own date (delete+insert on
    PostgreSQL, insert_overwrite of the date's partition on Spark), so
    rerunning a date replaces it and never duplicates it; full_refresh off,
    because the history is the memory behind time-in-tier and Overdue and a
    rebuild cannot recreate past dates (rerun them with their as_of_date
    instead); new columns are appended; one row per user per date. -#}
{% macro readiness_history_config() -%}
    {%- set settings = {
        'materialized': 'incremental',
        'full_refresh': false,
        'on_schema_change': 'append_new_columns',
        'indexes': [
            {'columns': ['as_of_date', 'user_id'], 'unique': true},
        ],
    } -%}
    {#- the engine's per-date strategy (macros/cross_db/types.sql) -#}
    {%- do settings.update(as_of_incremental_config()) -%}
    {{ return(settings) }}
{%- endmacro %}
