def test_entry_document_links_every_collection(testapp):
    response = testapp.get("/api/v1/")
    links = response.json["_links"]
    for name in ("self", "users", "posts", "students", "classes", "registrations", "tokens"):
        assert links[name]["href"].startswith("http://api.example.com/api/v1/")
