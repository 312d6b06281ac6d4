// Body of the Ory Kratos web_hook that calls chimpbridge's POST /hooks/registration.
//
// It sends only what the email needs. Never forward ctx as a whole: ctx.request_cookies holds
// the person's session cookies and ctx.request_headers their browser's headers (chimpbridge
// refuses a body that carries them). Never put an API key here either: the hook key goes in
// the web_hook's auth config, and the Mandrill key stays in AWS Secrets Manager.
//
// Kratos renders this with the stored identity (post-persist hooks only: a pre-persist hook
// sees the all-zero identity id, which chimpbridge answers with a 422 explaining the fix).
function(ctx)
  local has(object, field) = object != null && std.isObject(object) && std.objectHas(object, field) && object[field] != null;
  local get(object, field, default) = if has(object, field) then object[field] else default;

  local identity = ctx.identity;
  local traits = get(identity, 'traits', {});
  local addresses = get(identity, 'verifiable_addresses', []);
  local emailAddresses = [a.value for a in addresses if get(a, 'via', 'email') == 'email' && has(a, 'value')];

  // traits.email is what the person typed into the form; verifiable addresses are a fallback
  // for identity schemas that name the trait differently.
  local email =
    if has(traits, 'email') && std.isString(traits.email) && traits.email != '' then traits.email
    else if std.length(emailAddresses) > 0 then emailAddresses[0]
    else null;

  // Ory's presets use traits.name.first / traits.name.last; a plain string name works too.
  local name = get(traits, 'name', null);
  local nameFields =
    if std.isObject(name) then { first: get(name, 'first', null), last: get(name, 'last', null) }
    else if std.isString(name) then { full: name }
    else { first: get(traits, 'first_name', null), last: get(traits, 'last_name', null) };

  // The browser's preferred language, when the identity schema has no locale trait.
  local headers = get(ctx, 'request_headers', {});
  local acceptLanguage = get(headers, 'Accept-Language', null);
  local firstAcceptLanguage =
    if acceptLanguage == null then null
    else
      local header = if std.isArray(acceptLanguage) then (if std.length(acceptLanguage) > 0 then acceptLanguage[0] else '') else acceptLanguage;
      local tag = std.stripChars(std.split(std.split(header, ',')[0], ';')[0], ' ');
      if tag == '' || tag == '*' then null else tag;
  local locale = get(traits, 'locale', get(traits, 'language', firstAcceptLanguage));

  // Boolean traits (consents and opt-ins such as traits.newsletter or traits.consent.newsletter):
  // chimpbridge subscribes the person when the trait named by NewsletterOptInTrait is true.
  local consents = {
    [field]: traits[field]
    for field in std.objectFields(traits)
    if std.isBoolean(traits[field])
  } + {
    [field + '.' + inner]: traits[field][inner]
    for field in std.objectFields(traits)
    if std.isObject(traits[field])
    for inner in std.objectFields(traits[field])
    if std.isBoolean(traits[field][inner])
  };

  // The transient payload is what the browser sent with the form, chosen by whoever sends it.
  // Only its plain members (short text, numbers, booleans) leave Kratos; objects and lists never
  // do. chimpbridge forwards to the email only the members a flow's payload_keys allow.
  local payload = get(ctx.flow, 'transient_payload', {});
  local transientPayload =
    if !std.isObject(payload) then {}
    else {
      [key]: payload[key]
      for key in std.objectFields(payload)
      if std.isBoolean(payload[key]) || std.isNumber(payload[key])
         || (std.isString(payload[key]) && std.length(payload[key]) <= 200)
    };

  // An identity without any email address (phone-only sign-up) gets no email: "cancel" tells
  // Kratos not to call the hook at all.
  if email == null then error 'cancel'
  else {
    identity_id: identity.id,
    email: email,
    name: { [k]: nameFields[k] for k in std.objectFields(nameFields) if nameFields[k] != null },
    [if locale != null then 'locale']: locale,
    flow: {
      id: ctx.flow.id,
      [if has(ctx.flow, 'type') then 'type']: ctx.flow.type,
    },
    transient_payload: transientPayload,
    consents: consents,
  }
