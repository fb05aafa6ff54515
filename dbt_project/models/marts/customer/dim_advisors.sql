with

users as (
    select * from {{ ref('stg_salesforce__users') }}
),

households as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

book_sizes as (
    select
        owner_user_id,
        count(*) as household_count
    from households
    group by owner_user_id
),

final as (
    select
        users.user_id as advisor_id,
        {{ hash_pii('users.username') }} as username_hash,
        {{ hash_pii(dbt.concat(['users.first_name', "' '", 'users.last_name'])) }} as advisor_name_hash,
        {{ mask_email('users.email') }} as email_masked,
        users.title,
        users.region,
        users.is_active,
        cast(coalesce(book_sizes.household_count, 0) as bigint) as household_count,
        users.created_at
    from users
    left join book_sizes
        on users.user_id = book_sizes.owner_user_id
)

select * from final
