{#- Time helpers. Timestamps are stored in UTC (TIMESTAMPTZ, session zone UTC); days, ISO
    weeks and months are taken in the reporting time zone (var reporting_tz). -#}

{#- Minutes from `start` to `end` as a fraction, exact to the microsecond. -#}
{% macro minutes_between(start, end) -%}
    (date_diff('microsecond', {{ start }}, {{ end }}) / 60000000.0)
{%- endmacro %}

{#- The wall-clock time of a UTC instant in the reporting time zone (TIMESTAMP, no zone). -#}
{% macro local_time(ts) -%}
    timezone('{{ var("reporting_tz") }}', {{ ts }})
{%- endmacro %}

{#- The calendar date of an instant in the reporting time zone. -#}
{% macro local_date(ts) -%}
    cast({{ local_time(ts) }} as date)
{%- endmacro %}

{#- Monday of the ISO week of an instant, in the reporting time zone. -#}
{% macro local_week_start(ts) -%}
    cast(date_trunc('week', {{ local_time(ts) }}) as date)
{%- endmacro %}

{#- First day of the month of an instant, in the reporting time zone. -#}
{% macro local_month_start(ts) -%}
    cast(date_trunc('month', {{ local_time(ts) }}) as date)
{%- endmacro %}

{#- The instant `minutes` (an integer column or literal) after `ts`: a clock's deadline. -#}
{% macro add_minutes(ts, minutes) -%}
    ({{ ts }} + to_microseconds(cast({{ minutes }} as bigint) * 60000000))
{%- endmacro %}

{#- Compliance on a clock with a target: null while the clock is not decided (neither
    stopped by T nor past its deadline), else whether it stopped within the target. -#}
{% macro is_within_target(started_at, stopped_at, target_minutes) -%}
    case
        when {{ stopped_at }} is not null
            then {{ minutes_between(started_at, stopped_at) }} <= {{ target_minutes }}
        when {{ minutes_between(started_at, as_of()) }} > {{ target_minutes }}
            then false
    end
{%- endmacro %}

{#- A rate in [0, 1]; null when the denominator is 0. -#}
{% macro safe_rate(numerator, denominator) -%}
    ({{ numerator }} / nullif({{ denominator }}, 0)::double)
{%- endmacro %}
