"""The register of processing (registre des traitements, RGPD article 30) of one CPTS.

Generated from the CPTS settings so that the register, the notice shown to patients and the
purge that runs every night cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from models import Territory


@dataclass(frozen=True)
class RetentionRule:
    data: str
    duration: str


@dataclass(frozen=True)
class ProcessingRegister:
    name: str
    controller: str
    controller_address: str
    controller_contact: str
    dpo: str
    purposes: list[str]
    legal_basis: str
    data_categories: list[str]
    sensitive_data: str
    people_categories: list[str]
    recipients: list[str]
    transfers: str
    retention: list[RetentionRule]
    security_measures: list[str]
    rights: str


def _months(count: int) -> str:
    return f"{count} mois"


def build_register(territory: Territory) -> ProcessingRegister:
    """The register entry for the orientation processing of this CPTS."""
    contacts = " · ".join(v for v in (territory.contact_phone, territory.contact_email) if v)
    return ProcessingRegister(
        name="Orientation des patients sans médecin traitant",
        controller=territory.name,
        controller_address=territory.postal_address or "(adresse postale à compléter)",
        controller_contact=contacts or "(contact à compléter)",
        dpo=territory.dpo_contact or "(délégué à la protection des données à désigner)",
        purposes=[
            "Recevoir les demandes des personnes sans médecin traitant du territoire.",
            "Vérifier que le domicile est dans le territoire de la CPTS.",
            "Rechercher des médecins volontaires proches et leur présenter la demande.",
            "Informer la personne de la solution trouvée et suivre la demande.",
            "Produire des indicateurs anonymes d'activité de la CPTS.",
        ],
        legal_basis=(
            "Mission d'intérêt public de la CPTS (accès aux soins, article L1434-12 du code de "
            "la santé publique) et consentement de la personne au moment de la demande."
        ),
        data_categories=[
            "Identité : nom, prénom, date de naissance des personnes du foyer.",
            "Coordonnées : téléphone, adresse e-mail, adresse du domicile, commune.",
            "Situation : motif de la recherche, besoins (visites à domicile, mobilité réduite, "
            "suivi d'une maladie chronique), langue parlée.",
            "Priorité : affection de longue durée (ALD), CSS ou AME, âge.",
            "Suivi : statut de la demande, messages échangés, médecin choisi.",
        ],
        sensitive_data=(
            "Données de santé limitées à l'existence d'une ALD et aux besoins de soins "
            "déclarés ; aucun diagnostic n'est demandé."
        ),
        people_categories=[
            "Personnes sans médecin traitant résidant sur le territoire, et leur foyer.",
            "Professionnels de santé orienteurs (médecins, infirmiers, pharmaciens, CPAM).",
            "Médecins généralistes volontaires.",
            "Coordinateurs et administrateurs de la CPTS.",
        ],
        recipients=[
            f"Coordinateurs de la {territory.name}, seuls à voir la demande complète.",
            "Médecins volontaires sollicités : initiales, tranche d'âge, commune et besoins, "
            "l'identité complète seulement après leur accord.",
            "Prestataires techniques d'envoi des SMS et e-mails (sous-traitants), pour le "
            "seul acheminement des messages.",
        ],
        transfers="Aucun transfert hors de l'Union européenne n'est prévu par le service.",
        retention=[
            RetentionRule(
                "Demandes closes, retirées ou abouties",
                f"{_months(territory.retention_closed_months)} après la clôture, puis "
                "anonymisées (seules des statistiques restent).",
            ),
            RetentionRule(
                "Demandes hors territoire",
                f"{_months(territory.retention_out_of_territory_months)} après la demande, "
                "puis anonymisées.",
            ),
            RetentionRule(
                "Contenu des SMS et e-mails",
                f"{_months(territory.retention_message_body_months)} après l'envoi, puis "
                "effacé (la trace de l'envoi reste).",
            ),
            RetentionRule(
                "Journal des accès (audit)",
                "Conservé pour prouver qui a consulté ou modifié quoi ; non modifiable.",
            ),
        ],
        security_measures=[
            "Chaque CPTS ne voit que ses propres données (cloisonnement dans la base).",
            "Mots de passe hachés (argon2), politique de mot de passe, blocage après 5 échecs.",
            "Liens personnels signés, à usage unique par finalité et limités dans le temps.",
            "Journal des consultations et modifications, non modifiable par l'application.",
            "Connexions chiffrées (HTTPS, HSTS), cookies sécurisés, protection CSRF, "
            "limitation du nombre d'essais.",
            "Effacement automatique selon les durées ci-dessus.",
        ],
        rights=(
            "Accès, rectification, effacement, limitation et opposition : par le lien "
            "personnel reçu après la demande, ou auprès de la coordination "
            f"({contacts or 'contact à compléter'}). Une demande dont vous limitez le "
            "traitement est conservée mais n'est plus traitée (aucun médecin sollicité, "
            "aucune proposition ni message) jusqu'à ce que vous demandiez de lever la "
            "limitation ; vous pouvez toujours la retirer ou l'effacer. Réclamation "
            "possible auprès de la CNIL (www.cnil.fr)."
        ),
    )
