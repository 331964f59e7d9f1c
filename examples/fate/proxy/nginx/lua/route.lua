-- Routes a request to the party's FATE-Flow (placeholder).
ngx.say("fate proxy")
