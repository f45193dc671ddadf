"""Demo email templates: a meeting follow-up to a contact (with its French translation), a
quote sent to the customer, and a reminder to an account's owner — each only when its
module is on the site, and none when the site has templates already."""
from __future__ import annotations

from core.kernel.records import SYSTEM_USER

MODULE = "email_templates"

TEMPLATES = [
    {"name": "Meeting follow-up", "for_module": "contacts", "language": "en",
     "subject": "Following up on our meeting, {{ first_name }}",
     "body_html": (
         "<p>Dear {{ name }},</p>"
         "<p>Thank you for taking the time to meet with me. As promised, here is a short "
         "summary of what we discussed{% if account %} for {{ account.name }}{% endif %}, "
         "and the next steps on our side.</p>"
         "<ul><li>We send you the proposal within the week.</li>"
         "<li>We schedule a demonstration with your team.</li></ul>"
         "<p>Do not hesitate to call me if anything is unclear.</p>"
         "<p>Kind regards,<br>{{ user.name }}<br>{{ site.name }}</p>"),
     "description": "Sent after a first meeting with a prospect's contact."},
    {"name": "Quote sent", "for_module": "quotes", "language": "en",
     "subject": "Your quote {{ number }}: {{ name }}",
     "body_html": (
         "<p>Hello{% if billing_contact %} {{ billing_contact.first_name }}{% endif %},</p>"
         "<p>Please find our quote <strong>{{ number }}</strong> for {{ name }}: "
         "{{ amount }}, valid until {{ valid_until }}.</p>"
         "<p>To accept it, simply reply to this message.</p>"
         "<p>Best regards,<br>{{ user.name }}</p>"),
     "description": "The customer's copy of a quote, when it is delivered."},
    {"name": "Account check-in reminder", "for_module": "accounts", "language": "en",
     "subject": "Reminder: check in with {{ name }}",
     "body_html": (
         "<p>{{ assigned_user.name }},</p>"
         "<p>{{ name }} ({{ account_type }}, {{ industry }}) has not been contacted "
         "recently. Take a moment to call them: {{ phone_office }}.</p>"
         '<p><a href="{{ record_url }}">Open {{ name }}</a></p>'),
     "body_text": ("{{ assigned_user.name }},\n\n{{ name }} has not been contacted recently. "
                   "Call them: {{ phone_office }}.\n\n{{ record_url }}\n"),
     "description": "Sent to an account's owner by a workflow when the account is quiet."},
]

TRANSLATIONS = {
    "Meeting follow-up": {
        "name": "Meeting follow-up (français)", "language": "fr",
        "subject": "Suite à notre rendez-vous, {{ first_name }}",
        "body_html": (
            "<p>Bonjour {{ name }},</p>"
            "<p>Merci d'avoir pris le temps de me rencontrer. Comme convenu, voici un court "
            "résumé de nos échanges{% if account %} pour {{ account.name }}{% endif %} et "
            "des prochaines étapes de notre côté.</p>"
            "<ul><li>Nous vous envoyons la proposition dans la semaine.</li>"
            "<li>Nous organisons une démonstration avec votre équipe.</li></ul>"
            "<p>N'hésitez pas à m'appeler pour toute question.</p>"
            "<p>Bien cordialement,<br>{{ user.name }}<br>{{ site.name }}</p>"),
        "description": "La version française du suivi de rendez-vous."},
}


def load(site, user, progress) -> None:
    if site.records.count(MODULE, SYSTEM_USER, cap=0):
        return
    wanted = [t for t in TEMPLATES if t["for_module"] in site.registry.modules]
    for index, values in enumerate(wanted):
        made = site.records.create(MODULE, {**values, "assigned_user_id": user.id}, user)
        translation = TRANSLATIONS.get(values["name"])
        if translation:
            site.records.create(MODULE, {**translation, "variant_of_id": made["id"],
                                         "assigned_user_id": user.id}, user)
        progress(index + 1, len(wanted))
