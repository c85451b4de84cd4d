with

quarantine as not materialized (

    select * from {{ ref('stg_ingest__quarantine') }}

),

-- Each ledger row with the file as first ingested (`ocse replay` rows point at it).
ledger as not materialized (

    select
        file_id,
        coalesce(replay_of_file_id, file_id) as root_file_id
    from {{ ref('stg_ingest__ledger') }}

),

-- Rows a replay loaded (raw history keeps the replay's file id and the file's row number).
replay_loads as (

    {% for feed in ['screening_hits', 'reports', 'enforcement_actions', 'cases'] %}
        select
            _file_id as file_id,
            _row_number as row_number
        from {{ ref('base_raw__' ~ feed) }}
        where _file_id in (
                select ledger.file_id from ledger
                where ledger.file_id <> ledger.root_file_id
            )
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

-- Every attempt at a row of a file: quarantined, or loaded by a replay.
attempts as (

    select
        ledger.root_file_id,
        tried.row_number,
        tried.file_id,
        lead(tried.file_id) over (
            partition by ledger.root_file_id, tried.row_number order by tried.file_id
        ) as next_attempt_file_id
    from (
        select
            file_id,
            row_number
        from quarantine
        union all
        select
            file_id,
            row_number
        from replay_loads
    ) as tried
    inner join ledger on tried.file_id = ledger.file_id

),

final as (

    select
        quarantine.feed,
        quarantine.file_id,
        quarantine.file_name,
        quarantine.row_number,
        quarantine.reason_codes,
        quarantine.record,
        quarantine.quarantined_at,
        attempts.next_attempt_file_id as superseded_by_file_id

    from quarantine
    inner join attempts
        on
        quarantine.file_id = attempts.file_id
        and quarantine.row_number = attempts.row_number

)

select * from final
