/* The pages' words in English and German. The server picks the language from Accept-Language and
 * writes it into <html lang>; the pages read it here. Elements with data-t="key" get their text from
 * the table; scripts call FDi18n.t(key, {name: value}). Amounts and times are formatted for the
 * language (Intl), times in the restaurant's time zone when the page knows it.
 * tests/unit/test_i18n.py checks that both tables have the same keys and that every key a page uses
 * is in them. */
(function () {
  'use strict';
  const STRINGS = {
    en: {
      // the tracking page
      'track.title': 'Your order',
      'track.reconnecting': 'Connection lost. Reconnecting… (the page keeps updating)',
      'track.loading': 'Loading your order…',
      'track.progress': 'Progress',
      'track.your_courier': 'Your courier',
      'track.delivery_note': 'Delivery note',
      'track.your_order': 'Your order',
      'track.your_restaurant': 'Your restaurant',
      'track.you': 'You',
      'track.courier': 'Courier',
      'track.heading_to_restaurant': ' · heading to the restaurant',
      'track.arrived_at': 'Arrived at {time}',
      'track.arrives_around': 'Arrives around {time} · in {minutes} min',
      'track.link_invalid': 'This tracking link is not valid.',
      'track.link_revoked': 'This tracking link was turned off.',
      'track.link_expired': 'This tracking link has expired.',
      'step.placed': 'Order placed', 'step.accepted': 'Restaurant accepted', 'step.preparing': 'Being prepared',
      'step.ready': 'Ready for pickup', 'step.picked_up': 'On the way', 'step.delivered': 'Delivered',
      'headline.placed': 'Waiting for the restaurant',
      'headline.accepted': 'The restaurant is preparing your order',
      'headline.preparing': 'The restaurant is preparing your order',
      'headline.ready': 'Your order is ready for pickup',
      'headline.picked_up': 'Your order is on the way',
      'headline.delivered': 'Delivered. Enjoy your meal!',
      'headline.cancelled': 'This order was cancelled',
      'headline.rejected': 'The restaurant could not take this order',
      'headline.expired': 'The restaurant did not answer in time; the order was cancelled',
      // the restaurant tablet
      'tablet.title': 'Restaurant tablet',
      'tablet.signin_hint': "Sign in with a staff account, or paste the restaurant's API key.",
      'tablet.email': 'Email', 'tablet.password': 'Password', 'tablet.or': 'or',
      'tablet.api_key': 'API key (fdk_…)', 'tablet.sign_in': 'Sign in', 'tablet.sign_out': 'Sign out',
      'tablet.offline': 'offline', 'tablet.live': 'live', 'tablet.reconnecting': 'reconnecting',
      'tablet.pause_for': 'Pause for', 'tablet.min': 'min',
      'tablet.pause': 'Pause store', 'tablet.open': 'Open store', 'tablet.menu_toggle': 'Menu & sold out',
      'tablet.menu_heading': 'Menu: mark an item sold out for today',
      'tablet.map_hint': 'The store and where its active orders go.',
      'tablet.col_new': 'New', 'tablet.col_kitchen': 'In the kitchen', 'tablet.col_ready': 'Ready',
      'tablet.col_out': 'Picked up',
      'tablet.reason.item_unavailable': 'Item unavailable', 'tablet.reason.too_busy': 'Too busy',
      'tablet.reason.capacity': 'No capacity', 'tablet.reason.store_closed': 'Closing',
      'tablet.reason.address_problem': 'Address problem', 'tablet.reason.other': 'Other',
      'tablet.session_ended': 'Your session ended; sign in again.',
      'tablet.missing_suffix': ' ({count} missing)', 'tablet.note': 'Note: {note}',
      'tablet.accept': 'Accept', 'tablet.reject': 'Reject', 'tablet.mark_ready': 'Mark ready',
      'tablet.report_missing': 'Report missing', 'tablet.to_accept': '{clock} to accept',
      'tablet.paused_until': 'paused until {time}',
      'tablet.status.online': 'online', 'tablet.status.paused': 'paused', 'tablet.status.closed': 'closed',
      'tablet.sold_out_suffix': ' (sold out)', 'tablet.back_in_stock': 'Back in stock',
      'tablet.sold_out_today': 'Sold out today', 'tablet.item_back': '{item} is back in stock',
      'tablet.item_sold_out': '{item} is sold out for today',
      'tablet.not_restaurant': 'This account is not a restaurant account.',
      'tablet.no_store': 'This restaurant has no store yet.', 'tablet.signin_failed': 'Sign-in failed',
      'tablet.staff_only': 'Sign in with a restaurant staff account.',
      'tablet.paused_for': 'Paused for {minutes} minutes',
      // the courier app
      'courier.title': 'Courier',
      'courier.email': 'Email', 'courier.password': 'Password', 'courier.sign_in': 'Sign in',
      'courier.sign_out': 'Sign out', 'courier.offline': 'offline', 'courier.connected': 'connected',
      'courier.reconnecting': 'reconnecting', 'courier.go_online': 'Go online', 'courier.go_offline': 'Go offline',
      'courier.gps_waiting': 'GPS: waiting for a position…', 'courier.gps_none': 'GPS: no position right now; still trying…',
      'courier.waiting_to_send': ' · {count} waiting to send',
      'courier.new_offer': 'New offer', 'courier.accept': 'Accept', 'courier.decline': 'Decline',
      'courier.current_delivery': 'Current delivery', 'courier.open_in_maps': 'Open in maps', 'courier.today': 'Today',
      'courier.session_ended': 'Your session ended; sign in again.',
      'courier.offer_gone': 'That offer was no longer open.', 'courier.offer_withdrawn': 'The offer was withdrawn.',
      'courier.offer_expired': 'The offer expired.',
      'courier.offer_text_one': '{payout} · pick up at the restaurant, {stops} drop-off',
      'courier.offer_text_other': '{payout} · pick up at the restaurant, {stops} drop-offs',
      'courier.taken_offline': 'An operator took you offline.',
      'courier.reposition': 'Orders are waiting near the marked spot.',
      'courier.no_geolocation': 'This phone gives no position.',
      'courier.allow_location': 'Allow location for this app: couriers are offered work by where they are.',
      'courier.could_not_answer': 'Could not answer: {error}', 'courier.could_not_confirm': 'Could not confirm: {error}',
      'courier.assigned_later': 'An operator gave you an order: next, after this delivery.',
      'courier.assigned': 'An operator gave you an order.',
      'courier.unassigned': 'An operator gave one of your orders to another courier.',
      'courier.restaurant': 'Restaurant', 'courier.dropoff': 'Drop-off', 'courier.you': 'You',
      'courier.go_to_restaurant': 'Go to the restaurant', 'courier.deliver': 'Deliver',
      'courier.pick_up_one': 'Pick up {count} order.', 'courier.pick_up_other': 'Pick up {count} orders.',
      'courier.picked_up': 'Picked up', 'courier.delivered': 'Delivered', 'courier.thanks': 'Delivered. Thank you!',
      'courier.earnings_one': '{amount} · {count} payment', 'courier.earnings_other': '{amount} · {count} payments',
      'courier.nothing_yet': 'Nothing yet today', 'courier.couriers_only': 'Sign in with a courier account.',
      'courier.signin_failed': 'Sign-in failed',
      'courier.queued_online': 'You are online; the server hears it when the connection is back.',
      'courier.queued_offline': 'You are offline; the server hears it when the connection is back.',
    },
    de: {
      'track.title': 'Deine Bestellung',
      'track.reconnecting': 'Verbindung unterbrochen. Verbinde neu… (die Seite wird weiter aktualisiert)',
      'track.loading': 'Deine Bestellung wird geladen…',
      'track.progress': 'Fortschritt',
      'track.your_courier': 'Dein Kurier',
      'track.delivery_note': 'Lieferhinweis',
      'track.your_order': 'Deine Bestellung',
      'track.your_restaurant': 'Dein Restaurant',
      'track.you': 'Du',
      'track.courier': 'Kurier',
      'track.heading_to_restaurant': ' · auf dem Weg zum Restaurant',
      'track.arrived_at': 'Angekommen um {time}',
      'track.arrives_around': 'Ankunft gegen {time} · in {minutes} Min.',
      'track.link_invalid': 'Dieser Sendungslink ist ungültig.',
      'track.link_revoked': 'Dieser Sendungslink wurde deaktiviert.',
      'track.link_expired': 'Dieser Sendungslink ist abgelaufen.',
      'step.placed': 'Bestellt', 'step.accepted': 'Vom Restaurant angenommen', 'step.preparing': 'In Zubereitung',
      'step.ready': 'Abholbereit', 'step.picked_up': 'Unterwegs', 'step.delivered': 'Geliefert',
      'headline.placed': 'Warten auf das Restaurant',
      'headline.accepted': 'Das Restaurant bereitet deine Bestellung zu',
      'headline.preparing': 'Das Restaurant bereitet deine Bestellung zu',
      'headline.ready': 'Deine Bestellung ist abholbereit',
      'headline.picked_up': 'Deine Bestellung ist unterwegs',
      'headline.delivered': 'Geliefert. Guten Appetit!',
      'headline.cancelled': 'Diese Bestellung wurde storniert',
      'headline.rejected': 'Das Restaurant konnte diese Bestellung nicht annehmen',
      'headline.expired': 'Das Restaurant hat nicht rechtzeitig geantwortet; die Bestellung wurde storniert',
      'tablet.title': 'Restaurant-Tablet',
      'tablet.signin_hint': 'Mit einem Mitarbeiterkonto anmelden oder den API-Schlüssel des Restaurants einfügen.',
      'tablet.email': 'E-Mail', 'tablet.password': 'Passwort', 'tablet.or': 'oder',
      'tablet.api_key': 'API-Schlüssel (fdk_…)', 'tablet.sign_in': 'Anmelden', 'tablet.sign_out': 'Abmelden',
      'tablet.offline': 'offline', 'tablet.live': 'live', 'tablet.reconnecting': 'verbinde neu',
      'tablet.pause_for': 'Pausieren für', 'tablet.min': 'Min.',
      'tablet.pause': 'Restaurant pausieren', 'tablet.open': 'Restaurant öffnen',
      'tablet.menu_toggle': 'Speisekarte & ausverkauft',
      'tablet.menu_heading': 'Speisekarte: einen Artikel für heute als ausverkauft markieren',
      'tablet.map_hint': 'Das Restaurant und wohin seine offenen Bestellungen gehen.',
      'tablet.col_new': 'Neu', 'tablet.col_kitchen': 'In der Küche', 'tablet.col_ready': 'Fertig',
      'tablet.col_out': 'Abgeholt',
      'tablet.reason.item_unavailable': 'Artikel nicht verfügbar', 'tablet.reason.too_busy': 'Zu viel los',
      'tablet.reason.capacity': 'Keine Kapazität', 'tablet.reason.store_closed': 'Wir schließen',
      'tablet.reason.address_problem': 'Problem mit der Adresse', 'tablet.reason.other': 'Anderes',
      'tablet.session_ended': 'Deine Sitzung ist abgelaufen; bitte erneut anmelden.',
      'tablet.missing_suffix': ' ({count} fehlen)', 'tablet.note': 'Hinweis: {note}',
      'tablet.accept': 'Annehmen', 'tablet.reject': 'Ablehnen', 'tablet.mark_ready': 'Als fertig melden',
      'tablet.report_missing': 'Fehlendes melden', 'tablet.to_accept': 'noch {clock} zum Annehmen',
      'tablet.paused_until': 'pausiert bis {time}',
      'tablet.status.online': 'geöffnet', 'tablet.status.paused': 'pausiert', 'tablet.status.closed': 'geschlossen',
      'tablet.sold_out_suffix': ' (ausverkauft)', 'tablet.back_in_stock': 'Wieder verfügbar',
      'tablet.sold_out_today': 'Heute ausverkauft', 'tablet.item_back': '{item} ist wieder verfügbar',
      'tablet.item_sold_out': '{item} ist für heute ausverkauft',
      'tablet.not_restaurant': 'Dieses Konto gehört zu keinem Restaurant.',
      'tablet.no_store': 'Dieses Restaurant hat noch keinen Standort.', 'tablet.signin_failed': 'Anmeldung fehlgeschlagen',
      'tablet.staff_only': 'Bitte mit einem Mitarbeiterkonto des Restaurants anmelden.',
      'tablet.paused_for': 'Für {minutes} Minuten pausiert',
      'courier.title': 'Kurier',
      'courier.email': 'E-Mail', 'courier.password': 'Passwort', 'courier.sign_in': 'Anmelden',
      'courier.sign_out': 'Abmelden', 'courier.offline': 'offline', 'courier.connected': 'verbunden',
      'courier.reconnecting': 'verbinde neu', 'courier.go_online': 'Online gehen', 'courier.go_offline': 'Offline gehen',
      'courier.gps_waiting': 'GPS: warte auf eine Position…', 'courier.gps_none': 'GPS: gerade keine Position; versuche weiter…',
      'courier.waiting_to_send': ' · {count} warten aufs Senden',
      'courier.new_offer': 'Neues Angebot', 'courier.accept': 'Annehmen', 'courier.decline': 'Ablehnen',
      'courier.current_delivery': 'Aktuelle Lieferung', 'courier.open_in_maps': 'In Karten öffnen', 'courier.today': 'Heute',
      'courier.session_ended': 'Deine Sitzung ist abgelaufen; bitte erneut anmelden.',
      'courier.offer_gone': 'Dieses Angebot war nicht mehr offen.', 'courier.offer_withdrawn': 'Das Angebot wurde zurückgezogen.',
      'courier.offer_expired': 'Das Angebot ist abgelaufen.',
      'courier.offer_text_one': '{payout} · Abholung im Restaurant, {stops} Lieferadresse',
      'courier.offer_text_other': '{payout} · Abholung im Restaurant, {stops} Lieferadressen',
      'courier.taken_offline': 'Ein Disponent hat dich offline geschaltet.',
      'courier.reposition': 'In der Nähe der markierten Stelle warten Bestellungen.',
      'courier.no_geolocation': 'Dieses Telefon liefert keine Position.',
      'courier.allow_location': 'Bitte Standort für diese App erlauben: Aufträge werden nach deinem Standort angeboten.',
      'courier.could_not_answer': 'Antwort nicht möglich: {error}', 'courier.could_not_confirm': 'Bestätigung nicht möglich: {error}',
      'courier.assigned_later': 'Ein Disponent hat dir eine Bestellung gegeben: als Nächstes, nach dieser Lieferung.',
      'courier.assigned': 'Ein Disponent hat dir eine Bestellung gegeben.',
      'courier.unassigned': 'Ein Disponent hat eine deiner Bestellungen einem anderen Kurier gegeben.',
      'courier.restaurant': 'Restaurant', 'courier.dropoff': 'Lieferadresse', 'courier.you': 'Du',
      'courier.go_to_restaurant': 'Zum Restaurant fahren', 'courier.deliver': 'Ausliefern',
      'courier.pick_up_one': '{count} Bestellung abholen.', 'courier.pick_up_other': '{count} Bestellungen abholen.',
      'courier.picked_up': 'Abgeholt', 'courier.delivered': 'Zugestellt', 'courier.thanks': 'Zugestellt. Danke!',
      'courier.earnings_one': '{amount} · {count} Zahlung', 'courier.earnings_other': '{amount} · {count} Zahlungen',
      'courier.nothing_yet': 'Heute noch nichts', 'courier.couriers_only': 'Bitte mit einem Kurierkonto anmelden.',
      'courier.signin_failed': 'Anmeldung fehlgeschlagen',
      'courier.queued_online': 'Du bist online; der Server erfährt es, sobald die Verbindung zurück ist.',
      'courier.queued_offline': 'Du bist offline; der Server erfährt es, sobald die Verbindung zurück ist.',
    },
  };
  const lang = STRINGS[document.documentElement.lang] ? document.documentElement.lang : 'en';
  const locale = lang === 'de' ? 'de-DE' : 'en-GB';

  function t(key, vars) {
    const text = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
    return vars ? text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m)) : text;
  }

  function apply(root) {
    for (const el of (root || document).querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
    for (const el of (root || document).querySelectorAll('[data-t-placeholder]')) {
      el.placeholder = t(el.dataset.tPlaceholder);
    }
    const title = document.querySelector('title[data-t]');
    if (title) document.title = t(title.dataset.t);
  }

  // Integer minor units and an ISO 4217 code: Intl knows each currency's decimals (JPY 0, KWD 3).
  function money(m) {
    try {
      const f = new Intl.NumberFormat(locale, { style: 'currency', currency: m.currency });
      const digits = f.resolvedOptions().maximumFractionDigits;
      return f.format(m.amount / 10 ** digits);
    } catch (e) { return `${m.amount} ${m.currency}`; }
  }

  function time(at, timeZone) {
    const options = { hour: '2-digit', minute: '2-digit' };
    try { return new Date(at).toLocaleTimeString(locale, timeZone ? { ...options, timeZone } : options); }
    catch (e) { return new Date(at).toLocaleTimeString(locale, options); }  // an unknown zone name
  }

  window.FDi18n = { lang, locale, t, apply, money, time };
  apply();  // the pages load this script at the end of <body>, after the elements it names
})();
