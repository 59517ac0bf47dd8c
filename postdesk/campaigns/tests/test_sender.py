"""How many jobs send a campaign."""


def test_a_campaign_takes_at_most_four_senders_and_leaves_two_workers_free():
    from postdesk.campaigns.services import sending_jobs

    assert sending_jobs(2, 6) == 4
    assert sending_jobs(2, 4) == 2
    assert sending_jobs(1, 6) == 2
    assert sending_jobs(8, 20) == 4
    assert sending_jobs(2, 2) == 1
