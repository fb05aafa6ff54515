-- Billing statements rolled up from brokerage account to household per month.
-- A table, not a view: three marts read it (fct_household_months, fct_household_features,
-- dim_households), and at scale the roll-up of every billing statement is the expensive part.
{{ config(materialized='table') }}
with

statements as (
    select * from {{ ref('stg_broker__billing_statements') }}
),

brokerage_accounts as (
    select * from {{ ref('stg_salesforce__brokerage_accounts') }}
),

households as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

aggregated as (
    select
        households.household_id,
        statements.period_end_on,
        min(statements.currency) as currency,
        {{ money_sum('statements.market_value') }} as aum,
        {{ money_sum('statements.net_flows') }} as net_flows,
        {{ money_sum('statements.fees_billed') }} as fees_billed,
        sum(case when statements.is_account_open then 1 else 0 end) as open_account_count,
        count(*) as billed_account_count
    from statements
    inner join brokerage_accounts
        on statements.account_number = brokerage_accounts.account_number
    inner join households
        on brokerage_accounts.account_id = households.account_id
    group by households.household_id, statements.period_end_on
),

final as (
    select
        *,
        -- A statement belongs to its month: the as-of month is billed as of the as-of date (e.g.
        -- the 30th), and comparing exact dates with month-end cutoffs would lose that month.
        {{ month_end('period_end_on') }} as statement_month_on
    from aggregated
)

select * from final
