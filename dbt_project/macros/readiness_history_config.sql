{#- The config of a readiness history kept one partition per as-of date
    (int_users_readiness_scored, and readiness_history that publishes it):
    incremental by as_of_date - a run deletes and rewrites its own date, so
    rerunning a date replaces it and never duplicates it; full_refresh off,
    because the history is the memory behind time-in-tier and Overdue and a
    rebuild cannot recreate past dates (rerun them with their as_of_date
    instead); new columns are appended; one row per user per date. -#}
{% macro readiness_history_config() -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'delete+insert',
        'unique_key': ['as_of_date'],
        'full_refresh': false,
        'on_schema_change': 'append_new_columns',
        'indexes': [
            {'columns': ['as_of_date', 'user_id'], 'unique': true},
        ],
    }) }}
{%- endmacro %}
