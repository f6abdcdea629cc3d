def test_login_page_is_chinese_by_default(client):
    page = client.get("/login")
    assert page.status_code == 200
    assert "梵净山珍·松桃馆" in page.get_data(as_text=True)
    assert 'lang="zh-CN"' in page.get_data(as_text=True)


def test_login_and_land(client, auth, make_user):
    make_user("ann", "manager")
    response = auth.login("ann")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/dashboard")
    assert client.get("/dashboard").status_code == 200
