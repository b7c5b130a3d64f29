{#- JSON documents (reasons, signal values, attributes, event properties).
    PostgreSQL builds jsonb; Spark has no JSON type, so there a document is its
    JSON text (a string column), built and read with Spark's JSON functions. -#}

{#- An object from `pairs` (key -> SQL expression, in order). Keys listed in
    `json_keys` hold expressions that already are JSON documents. -#}
{% macro json_object(pairs, json_keys=[]) -%}
    {{ return(adapter.dispatch('json_object', 'upshift')(pairs, json_keys)) }}
{%- endmacro %}

{% macro postgres__json_object(pairs, json_keys) -%}
    jsonb_build_object(
        {%- for key, value in pairs.items() %}
        '{{ key }}', {{ value }}{{ ',' if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}

{% macro spark__json_object(pairs, json_keys) -%}
    concat('{',
        {%- for key, value in pairs.items() %}
        '"{{ key }}":', {% if key in json_keys %}coalesce({{ value }}, 'null'){% else %}{{ spark__json_scalar(value) }}{% endif %}{{ ", ','," if not loop.last else ',' }}
        {%- endfor %}
    '}')
{%- endmacro %}

{#- A scalar as its JSON text (null as null): Spark's to_json takes only
    structs, maps and arrays, so the value goes through a one-element array. -#}
{% macro spark__json_scalar(value) -%}
    regexp_extract(to_json(array({{ value }})), '^\\[(.*)\\]$', 1)
{%- endmacro %}

{#- An array of scalars (`values`, SQL expressions) as a JSON document. -#}
{% macro json_array(values) -%}
    {{ return(adapter.dispatch('json_array', 'upshift')(values)) }}
{%- endmacro %}

{% macro postgres__json_array(values) -%}
    jsonb_build_array({{ values | join(', ') }})
{%- endmacro %}

{% macro spark__json_array(values) -%}
    to_json(array({{ values | join(', ') }}))
{%- endmacro %}

{#- Aggregate: the JSON documents `document` of the rows where `where` holds, as
    one array ordered by the `order_by` expressions (ascending); [] when none. -#}
{% macro json_agg(document, order_by, where='true') -%}
    {{ return(adapter.dispatch('json_agg', 'upshift')(document, order_by, where)) }}
{%- endmacro %}

{% macro postgres__json_agg(document, order_by, where) -%}
    coalesce(
        jsonb_agg({{ document }} order by {{ order_by | join(', ') }}) filter (where {{ where }}),
        cast('[]' as jsonb)
    )
{%- endmacro %}

{% macro spark__json_agg(document, order_by, where) -%}
    concat('[', array_join(transform(array_sort(collect_list(case when {{ where }} then named_struct(
        {%- for expression in order_by %}'k{{ loop.index }}', {{ expression }}, {% endfor -%}
        'document', {{ document }}) end)), element -> element.document), ','), ']')
{%- endmacro %}

{#- The text of `key` in the object `document` (null when absent). -#}
{% macro json_text(document, key) -%}
    {{ return(adapter.dispatch('json_text', 'upshift')(document, key)) }}
{%- endmacro %}

{% macro postgres__json_text(document, key) -%}
    ({{ document }} ->> '{{ key }}')
{%- endmacro %}

{% macro spark__json_text(document, key) -%}
    get_json_object({{ document }}, '$.{{ key }}')
{%- endmacro %}

{#- The values of `key` of every object in the array `document`, as a JSON
    array of strings ([] for an empty array). -#}
{% macro json_array_pluck(document, key) -%}
    {{ return(adapter.dispatch('json_array_pluck', 'upshift')(document, key)) }}
{%- endmacro %}

{% macro postgres__json_array_pluck(document, key) -%}
    (select coalesce(jsonb_agg(element -> '{{ key }}'), cast('[]' as jsonb)) from jsonb_array_elements({{ document }}) as element)
{%- endmacro %}

{% macro spark__json_array_pluck(document, key) -%}
    to_json(transform(from_json({{ document }}, 'array<map<string,string>>'), element -> element['{{ key }}']))
{%- endmacro %}

{#- True when the array `document` holds an object whose `key` is `value`. -#}
{% macro json_array_has(document, key, value) -%}
    {{ return(adapter.dispatch('json_array_has', 'upshift')(document, key, value)) }}
{%- endmacro %}

{% macro postgres__json_array_has(document, key, value) -%}
    {{ document }} @> jsonb_build_array(jsonb_build_object('{{ key }}', {{ value }}))
{%- endmacro %}

{% macro spark__json_array_has(document, key, value) -%}
    exists(from_json({{ document }}, 'array<map<string,string>>'), element -> element['{{ key }}'] = {{ value }})
{%- endmacro %}

{#- The keys of object `right` added to object `left`. -#}
{% macro json_merge(left, right) -%}
    {{ return(adapter.dispatch('json_merge', 'upshift')(left, right)) }}
{%- endmacro %}

{% macro postgres__json_merge(left, right) -%}
    {{ left }} || {{ right }}
{%- endmacro %}

{% macro spark__json_merge(left, right) -%}
    case
        when {{ right }} = '{}' then {{ left }}
        when {{ left }} = '{}' then {{ right }}
        else concat(substr({{ left }}, 1, length({{ left }}) - 1), ',', substr({{ right }}, 2))
    end
{%- endmacro %}

{#- A JSON document column as the engine stores one (jsonb / JSON text). -#}
{% macro type_json() -%}
    {{ return(adapter.dispatch('type_json', 'upshift')()) }}
{%- endmacro %}

{% macro postgres__type_json() -%}
    {{ return('jsonb') }}
{%- endmacro %}

{% macro spark__type_json() -%}
    {{ return('string') }}
{%- endmacro %}

{#- The whole row of `relation_alias` as a JSON document. -#}
{% macro spark__row_as_json(relation_alias) -%}
    to_json(struct({{ relation_alias }}.*))
{%- endmacro %}

{#- The object `document` with `prefix` before every key. On Spark the keys are
    rewritten in the JSON text (values here are numbers and ids, which hold no
    quote). -#}
{% macro json_prefix_keys(document, prefix) -%}
    {{ return(adapter.dispatch('json_prefix_keys', 'upshift')(document, prefix)) }}
{%- endmacro %}

{% macro postgres__json_prefix_keys(document, prefix) -%}
    (
        select coalesce(jsonb_object_agg('{{ prefix }}' || member.key, member.value), cast('{}' as jsonb))
        from jsonb_each({{ document }}) as member
    )
{%- endmacro %}

{% macro spark__json_prefix_keys(document, prefix) -%}
    coalesce(regexp_replace({{ document }}, '([{,])"', '$1"{{ prefix }}'), '{}')
{%- endmacro %}

{#- The object `document` without its keys whose value is null (top level). -#}
{% macro json_strip_nulls(document) -%}
    {{ return(adapter.dispatch('json_strip_nulls', 'upshift')(document)) }}
{%- endmacro %}

{% macro postgres__json_strip_nulls(document) -%}
    jsonb_strip_nulls({{ document }})
{%- endmacro %}

{% macro spark__json_strip_nulls(document) -%}
    regexp_replace(regexp_replace({{ document }}, '"[^"]*":null(,|(\\}))', '$2'), ',\\}$', '}')
{%- endmacro %}

{#- The empty object. -#}
{% macro json_empty_object() -%}
    {{ return(adapter.dispatch('json_empty_object', 'upshift')()) }}
{%- endmacro %}

{% macro postgres__json_empty_object() -%}
    cast('{}' as jsonb)
{%- endmacro %}

{% macro spark__json_empty_object() -%}
    '{}'
{%- endmacro %}
