-- Per business date and counterparty: how much matched, and the open breaks by reason and age.
{% set break_types = ['missing_internal', 'missing_broker', 'missing_confirm', 'quantity', 'price', 'side',
    'settlement_date', 'account', 'commission', 'currency', 'duplicate'] %}

with

matches as (
    select * from {{ ref('fct_trade_matches') }}
),

breaks as (
    select * from {{ ref('fct_trade_breaks') }}
    where status = 'open'
),

match_counts as (
    select
        business_date,
        broker,
        count(*) as items_compared,
        sum(case when match_status = 'matched' then 1 else 0 end) as items_matched
    from matches
    group by business_date, broker
),

break_counts as (
    select
        business_date,
        broker,
        count(*) as open_breaks,
        {% for break_type in break_types %}
            sum(case when break_type = '{{ break_type }}' then 1 else 0 end) as {{ break_type }}_breaks,
        {% endfor %}
        sum(case when age_business_days = 0 then 1 else 0 end) as breaks_aged_0_days,
        sum(case when age_business_days = 1 then 1 else 0 end) as breaks_aged_1_day,
        sum(case when age_business_days between 2 and 5 then 1 else 0 end) as breaks_aged_2_to_5_days,
        sum(case when age_business_days > 5 then 1 else 0 end) as breaks_aged_over_5_days
    from breaks
    group by business_date, broker
),

dates_and_brokers as (
    select
        business_date,
        broker
    from match_counts
    union
    select
        business_date,
        broker
    from break_counts
),

final as (
    select
        {{ surrogate_key(['dates_and_brokers.business_date', 'dates_and_brokers.broker']) }}
            as recon_summary_id,
        dates_and_brokers.business_date,
        dates_and_brokers.broker,
        cast(coalesce(match_counts.items_compared, 0) as bigint) as items_compared,
        cast(coalesce(match_counts.items_matched, 0) as bigint) as items_matched,
        cast(match_counts.items_matched as double) / nullif(match_counts.items_compared, 0) as match_rate,
        cast(coalesce(break_counts.open_breaks, 0) as bigint) as open_breaks,
        {% for break_type in break_types %}
            cast(coalesce(break_counts.{{ break_type }}_breaks, 0) as bigint) as {{ break_type }}_breaks,
        {% endfor %}
        cast(coalesce(break_counts.breaks_aged_0_days, 0) as bigint) as breaks_aged_0_days,
        cast(coalesce(break_counts.breaks_aged_1_day, 0) as bigint) as breaks_aged_1_day,
        cast(coalesce(break_counts.breaks_aged_2_to_5_days, 0) as bigint) as breaks_aged_2_to_5_days,
        cast(coalesce(break_counts.breaks_aged_over_5_days, 0) as bigint) as breaks_aged_over_5_days
    from dates_and_brokers
    left join match_counts
        on
            dates_and_brokers.business_date = match_counts.business_date
            and coalesce(dates_and_brokers.broker, '') = coalesce(match_counts.broker, '')
    left join break_counts
        on
            dates_and_brokers.business_date = break_counts.business_date
            and coalesce(dates_and_brokers.broker, '') = coalesce(break_counts.broker, '')
)

select * from final
