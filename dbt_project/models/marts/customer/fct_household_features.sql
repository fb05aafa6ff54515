-- Point-in-time features per household and cutoff date, for training on rolling origins and for
-- scoring. A feature for cutoff C uses only what was known by the end of day C: billing
-- statements for months ending on or before C, interactions and opportunities dated on or before
-- C, cases open at C (closed after C counts as open), household attributes as of C from the
-- snapshot. Labels look at the 12 billed months after C and are null until all 12 are billed.
-- The household x cutoff grid and its bounds come from int_household_cutoffs; the billing,
-- label and interaction aggregations from their own int_household_cutoff_* tables.
--
-- Incremental by cutoff: a night rebuilds the cutoffs that are new or whose label window was still
-- open, and every cutoff of a household whose CRM records changed (crm_state_key, from
-- int_household_crm_states); a pre-hook first deletes those rows and the ones that left the cutoff grid
-- (macros/household_features.sql), and the build adds every grid row the table lacks. `dbt build
-- --full-refresh` (the nightly DAG's full_refresh param) rebuilds it whole, with the same rows.
-- A large grid is built in batches of households, one statement each (macros/household_batches.sql).
{{ config(
    materialized=household_features_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_stale_household_features() }}",
    post_hook="{{ insert_household_batches() }}",
) }}

with

windows as (
    select * from {{ ref('int_household_cutoffs') }}
    where {{ household_batch('household_id') }}
    {% if is_incremental() %}
        -- the grid rows the table lacks once the pre-hook has deleted what is stale (row by row:
        -- each batch's insert adds rows to cutoffs the next batch still lacks rows of)
        and not exists (
            select 1
            from {{ this }} as built
            where
                {{ household_batch('built.household_id') }}
                and built.household_id = int_household_cutoffs.household_id
                and built.cutoff_on = int_household_cutoffs.cutoff_on
        )
    {% endif %}
),

crm_states as (
    select * from {{ ref('int_household_crm_states') }}
    where {{ household_batch('household_id') }}
),

household_months as (
    select * from {{ ref('int_household_months_aggregated') }}
),

billing_calendar as (
    select max(statement_month_on) as last_billed_on
    from household_months
),

billing_features as (
    select * from {{ ref('int_household_cutoff_billing') }}
    where {{ household_batch('household_id') }}
),

labels as (
    select * from {{ ref('int_household_cutoff_labels') }}
    where {{ household_batch('household_id') }}
),

interaction_features as (
    select * from {{ ref('int_household_cutoff_interactions') }}
    where {{ household_batch('household_id') }}
),

contacts as (
    select * from {{ ref('stg_salesforce__contacts') }}
),

brokerage_accounts as (
    select * from {{ ref('stg_salesforce__brokerage_accounts') }}
),

opportunities as (
    select * from {{ ref('stg_salesforce__opportunities') }}
),

household_versions as (
    select * from {{ ref('households_snapshot') }}
    where {{ household_batch('household_id') }}
),

opportunity_features as (
    {% call(bucket_filter) union_over_buckets(['windows.account_id', 'o.account_id']) %}
        select
            windows.household_id,
            windows.cutoff_on,
            sum(case when not o.is_closed or o.close_on > windows.cutoff_on then 1 else 0 end) as open_opportunities,
            sum(case when cast(o.created_at as date) > windows.day_365_back_on then 1 else 0 end)
                as opportunities_created_365d,
            {{ money_sum(
                'case when o.is_won and o.close_on <= windows.cutoff_on
                    and o.close_on > windows.day_365_back_on then o.amount else 0 end'
            ) }} as won_opportunity_amount_365d
        from windows
        inner join opportunities as o
            on
                windows.account_id = o.account_id
                and cast(o.created_at as date) <= windows.cutoff_on
        where {{ bucket_filter }}
        group by windows.household_id, windows.cutoff_on
    {% endcall %}
),

account_features as (
    {% call(bucket_filter) union_over_buckets(['windows.account_id', 'b.account_id']) %}
        select
            windows.household_id,
            windows.cutoff_on,
            sum(
                case
                    when
                        b.opened_on <= windows.cutoff_on and (b.closed_on is null or b.closed_on > windows.cutoff_on)
                        then 1
                    else 0
                end
            ) as open_account_count
        from windows
        inner join brokerage_accounts as b
            on windows.account_id = b.account_id
        where {{ bucket_filter }}
        group by windows.household_id, windows.cutoff_on
    {% endcall %}
),

attributes_at_cutoff as (
    select *
    from (
        select
            windows.household_id,
            windows.cutoff_on,
            v.risk_profile,
            v.aum_band,
            v.fee_schedule_bps,
            v.has_analytics_consent,
            row_number() over (
                partition by windows.household_id, windows.cutoff_on
                order by
                    case when cast(v.dbt_valid_from as date) <= windows.cutoff_on then 0 else 1 end,
                    case when cast(v.dbt_valid_from as date) <= windows.cutoff_on then v.dbt_valid_from end desc,
                    v.dbt_valid_from
            ) as version_rank
        from windows
        inner join household_versions as v
            on windows.household_id = v.household_id
    ) as ranked
    where version_rank = 1
),

primary_contacts as (
    -- the batch's accounts only, and the one column the features read
    select
        account_id,
        birth_on
    from (
        select
            contacts.account_id,
            contacts.birth_on,
            row_number()
                over (
                    partition by contacts.account_id
                    order by contacts.is_primary desc, contacts.created_at asc, contacts.contact_id asc
                )
                as contact_rank
        from contacts
        where contacts.account_id in (select windows.account_id from windows)
    ) as ranked
    where contact_rank = 1
),

final as (
    select
        {{ surrogate_key(['windows.household_id', 'windows.cutoff_on']) }}
            as feature_key,
        windows.household_id,
        windows.cutoff_on,
        windows.feature_month_on,
        coalesce(billing_features.billed_open_accounts_at_cutoff, 0) > 0 as is_active_at_cutoff,
        cast({{ days_between('windows.client_since_on', 'windows.cutoff_on') }} as double)
        / 365.25
            as tenure_years,
        {{ age_band('primary_contacts.birth_on', 'windows.cutoff_on') }} as primary_contact_age_band,
        attributes_at_cutoff.risk_profile,
        attributes_at_cutoff.aum_band,
        attributes_at_cutoff.fee_schedule_bps,
        attributes_at_cutoff.has_analytics_consent,
        cast(coalesce(account_features.open_account_count, 0) as bigint) as open_account_count,
        billing_features.aum_at_cutoff,
        billing_features.aum_avg_3m,
        billing_features.aum_avg_12m,
        billing_features.aum_at_cutoff / nullif(billing_features.aum_12m_before, 0) - 1 as aum_growth_12m,
        coalesce(billing_features.fees_3m, 0) as fees_3m,
        coalesce(billing_features.fees_12m, 0) as fees_12m,
        coalesce(billing_features.net_flows_3m, 0) as net_flows_3m,
        coalesce(billing_features.net_flows_12m, 0) as net_flows_12m,
        billing_features.fees_12m / nullif(billing_features.aum_avg_12m, 0) * 10000 as fee_bps_trailing_12m,
        {% for kind in ['call', 'email', 'meeting', 'case', 'complaint'] %}
        cast(coalesce(interaction_features.{{ kind }}s_90d, 0) as bigint) as {{ kind }}s_90d,
        cast(coalesce(interaction_features.{{ kind }}s_365d, 0) as bigint) as {{ kind }}s_365d,
        {% endfor %}
        cast(coalesce(interaction_features.open_cases_at_cutoff, 0) as bigint) as open_cases_at_cutoff,
        cast({{ days_between('interaction_features.last_interaction_on', 'windows.cutoff_on') }} as bigint)
            as days_since_last_interaction,
        cast(coalesce(opportunity_features.open_opportunities, 0) as bigint) as open_opportunities,
        cast(coalesce(opportunity_features.opportunities_created_365d, 0) as bigint) as opportunities_created_365d,
        coalesce(opportunity_features.won_opportunity_amount_365d, 0) as won_opportunity_amount_365d,
        billing_calendar.last_billed_on >= windows.month_12_ahead_on as is_label_window_complete,
        case
            when billing_calendar.last_billed_on >= windows.month_12_ahead_on
                then coalesce(labels.revenue_next_12m, 0)
        end as revenue_next_12m,
        case
            when billing_calendar.last_billed_on < windows.month_12_ahead_on then null
            when coalesce(billing_features.billed_open_accounts_at_cutoff, 0) = 0 then null
            else coalesce(labels.active_months_next_12m, 0) < 12
        end as is_attrited_within_12m,
        crm_states.crm_state_key
    from windows
    cross join billing_calendar
    inner join crm_states
        on windows.household_id = crm_states.household_id
    left join billing_features
        on windows.household_id = billing_features.household_id and windows.cutoff_on = billing_features.cutoff_on
    left join labels
        on windows.household_id = labels.household_id and windows.cutoff_on = labels.cutoff_on
    left join interaction_features
        on windows.household_id = interaction_features.household_id
            and windows.cutoff_on = interaction_features.cutoff_on
    left join opportunity_features
        on windows.household_id = opportunity_features.household_id
            and windows.cutoff_on = opportunity_features.cutoff_on
    left join account_features
        on windows.household_id = account_features.household_id and windows.cutoff_on = account_features.cutoff_on
    left join attributes_at_cutoff
        on windows.household_id = attributes_at_cutoff.household_id
            and windows.cutoff_on = attributes_at_cutoff.cutoff_on
    left join primary_contacts
        on windows.account_id = primary_contacts.account_id
)

select * from final
