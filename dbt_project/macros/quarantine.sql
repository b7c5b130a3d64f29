{#- Quarantine helpers. A raw row that breaks the data contract is never dropped
    and never fails the build: staging flags it with the first failed check (in
    the order given), the validation models add reference checks, and the
    raw_quarantine mart lists every flagged row with its reason. -#}

{#- Renders `quarantine_reason` and `quarantine_detail` from an ordered list of
    checks, each {'reason': code, 'when': sql condition, 'detail': sql text expr}. -#}
{% macro quarantine_columns(checks) -%}
    case
        {%- for check in checks %}
        when {{ check.when }} then '{{ check.reason }}'
        {%- endfor %}
    end as quarantine_reason,
    case
        {%- for check in checks %}
        when {{ check.when }} then {{ check.detail }}
        {%- endfor %}
    end as quarantine_detail
{%- endmacro %}

{#- Check: any of `columns` is null. -#}
{% macro check_null_key(columns) -%}
    {%- set conditions = [] -%}
    {%- for column in columns -%}
        {%- do conditions.append(column ~ ' is null') -%}
    {%- endfor -%}
    {%- set detail -%}
        concat_ws(', '
        {%- for column in columns %}, case when {{ column }} is null then '{{ column }} is null' end{% endfor -%}
        )
    {%- endset -%}
    {{ return({'reason': 'null_key', 'when': '(' ~ (conditions | join(' or ')) ~ ')', 'detail': detail}) }}
{%- endmacro %}

{#- Check: a later copy of an id already seen. The first copy in copy_number's
    order stays valid, every other copy is flagged. -#}
{% macro check_duplicate_id(id_column, timestamp_column, row_columns) -%}
    {%- set when -%}
        ({{ id_column }} is not null and {{ copy_number(id_column, timestamp_column, row_columns) }} > 1)
    {%- endset -%}
    {{ return({'reason': 'duplicate_id', 'when': when, 'detail': "'" ~ id_column ~ " seen more than once'"}) }}
{%- endmacro %}

{#- A row's place among the copies of its id (1 = the copy kept): earliest
    `timestamp_column` first, then, between copies of one instant, the row's other
    `row_columns` in the order given, each compared as its own type (the id and the
    timestamp are already equal there). Missing values sort last, said explicitly
    because PostgreSQL and Spark default to opposite ends. So the kept copy depends
    only on the row's content, never on scan order; copies that tie on every column
    are the same row. Sort keys past the timestamp are only compared on ties, which
    costs far less than hashing every row. Text compares by collation: binary on
    Spark, the database's on PostgreSQL, so a PostgreSQL database whose collation is
    not C may order two texts (and keep a copy) differently from Spark.
    `relation_alias` qualifies the columns. -#}
{% macro copy_number(id_column, timestamp_column, row_columns, relation_alias=none) -%}
    {%- set prefix = relation_alias ~ '.' if relation_alias else '' -%}
    {%- set keys = [prefix ~ timestamp_column ~ ' nulls last'] -%}
    {%- for column in row_columns if column not in (id_column, timestamp_column) -%}
        {%- do keys.append(prefix ~ column ~ ' nulls last') -%}
    {%- endfor -%}
    row_number() over (partition by {{ prefix ~ id_column }} order by {{ keys | join(', ') }})
{%- endmacro %}

{#- Check: `column` holds a value outside `accepted`. -#}
{% macro check_enum(column, accepted) -%}
    {%- set quoted = [] -%}
    {%- for value in accepted -%}{%- do quoted.append("'" ~ value ~ "'") -%}{%- endfor -%}
    {%- set when = '(' ~ column ~ ' is null or ' ~ column ~ ' not in (' ~ (quoted | join(', ')) ~ '))' -%}
    {%- set detail = "concat('" ~ column ~ "=', coalesce(" ~ column ~ ", 'null'), ' not in " ~ (accepted | join('|')) ~ "')" -%}
    {{ return({'reason': 'invalid_enum', 'when': when, 'detail': detail}) }}
{%- endmacro %}

{#- Check: `column` is negative. -#}
{% macro check_negative(column) -%}
    {{ return({'reason': 'negative_amount', 'when': '(' ~ column ~ ' < 0)', 'detail': "concat('" ~ column ~ "=', cast(" ~ column ~ " as " ~ dbt.type_string() ~ "))"}) }}
{%- endmacro %}

{#- Check: the event timestamp is missing. -#}
{% macro check_missing_timestamp(column) -%}
    {{ return({'reason': 'missing_timestamp', 'when': '(' ~ column ~ ' is null)', 'detail': "'" ~ column ~ " is null'"}) }}
{%- endmacro %}

{#- Check: the event timestamp lies past the as-of date (beyond the grace days). -#}
{% macro check_future_timestamp(column) -%}
    {%- set limit = dbt.dateadd('day', var('quarantine_future_grace_days'), as_of_timestamp()) -%}
    {{ return({'reason': 'future_timestamp', 'when': '(' ~ column ~ ' >= ' ~ limit ~ ')', 'detail': "concat('" ~ column ~ "=', cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), ' after as-of date " ~ as_of_date() ~ "')"}) }}
{%- endmacro %}

{#- The whole row of `relation_alias` as a JSON document. -#}
{% macro row_as_json(relation_alias) -%}
    {{ return(adapter.dispatch('row_as_json', 'upshift')(relation_alias)) }}
{%- endmacro %}

{% macro default__row_as_json(relation_alias) -%}
    to_jsonb({{ relation_alias }})
{%- endmacro %}

{#- Check: any of `columns` is an empty or blank string (an id that names nobody). -#}
{% macro check_blank_key(columns) -%}
    {%- set conditions = [] -%}
    {%- for column in columns -%}
        {%- do conditions.append("trim(" ~ column ~ ") = ''") -%}
    {%- endfor -%}
    {%- set detail -%}
        concat_ws(', '
        {%- for column in columns %}, case when trim({{ column }}) = '' then '{{ column }} is blank' end{% endfor -%}
        )
    {%- endset -%}
    {{ return({'reason': 'blank_key', 'when': '(' ~ (conditions | join(' or ')) ~ ')', 'detail': detail}) }}
{%- endmacro %}

{#- Check: `column` is NaN or +/-infinity, which no amount can be and no
    destination accepts. -#}
{% macro check_non_finite(column) -%}
    {%- set when -%}
        ({{ is_non_finite(column) }})
    {%- endset -%}
    {{ return({'reason': 'non_finite_amount', 'when': when, 'detail': "concat('" ~ column ~ "=', cast(" ~ column ~ " as " ~ dbt.type_string() ~ "))"}) }}
{%- endmacro %}

{#- Check: the event timestamp lies before var('quarantine_earliest_event_date'):
    year 1, -infinity, an epoch default. (+infinity is a future_timestamp.) -#}
{% macro check_implausible_timestamp(column) -%}
    {%- set earliest = "cast('" ~ var('quarantine_earliest_event_date') ~ " 00:00:00+00' as " ~ type_timestamptz() ~ ")" -%}
    {{ return({'reason': 'implausible_timestamp', 'when': '(' ~ column ~ ' < ' ~ earliest ~ ')', 'detail': "concat('" ~ column ~ "=', cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), ' before " ~ var('quarantine_earliest_event_date') ~ "')"}) }}
{%- endmacro %}

{#- The accepted values of a raw column, read from the contract: the column's
    `meta.accepted_values` in _marketplace__sources.yml (the one place they are
    written). Only known at execution; parsing gets a placeholder. -#}
{% macro source_accepted_values(table, column) -%}
    {%- if not execute -%}{{ return(['']) }}{%- endif -%}
    {%- set node = graph.sources['source.' ~ project_name ~ '.marketplace.' ~ table] -%}
    {%- set values = ((node.columns.get(column) or {}).get('meta') or {}).get('accepted_values') -%}
    {%- if not values -%}
        {{ exceptions.raise_compiler_error('source marketplace.' ~ table ~ '.' ~ column ~ ' declares no meta accepted_values') }}
    {%- endif -%}
    {{ return(values) }}
{%- endmacro %}
